package policy

import (
	"path/filepath"
	"testing"

	"steward/examples"
)

// FuzzParse feeds arbitrary bytes to the loader: it must never panic, and a
// policy it accepts must pass its own check, render, and compare to itself.
func FuzzParse(f *testing.F) {
	for _, name := range []string{"jmir.yaml", "mixi.yaml"} {
		data, err := examples.FS.ReadFile(name)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	files, _ := filepath.Glob("testdata/*.yaml")
	for _, file := range files {
		data, err := testdataFS.ReadFile(file)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	f.Add([]byte("a: &x [*x]\n"))
	f.Add([]byte("categories: {a: {fields: [name]}}\nretention: {a: 1 year}\n"))
	f.Add([]byte("\xff\xfe"))
	f.Fuzz(func(t *testing.T, data []byte) {
		p, err := Parse("fuzz.yaml", data)
		if err != nil {
			return
		}
		if probs := p.Check(); len(probs) != 0 {
			t.Fatalf("accepted policy has problems: %v", probs)
		}
		if _, err := Render(p, Meta{}, "markdown"); err != nil {
			t.Fatalf("Render markdown: %v", err)
		}
		if _, err := Render(p, Meta{}, "html"); err != nil {
			t.Fatalf("Render html: %v", err)
		}
		if c := Diff(p, p); len(c.Items) != 0 {
			t.Fatalf("policy differs from itself: %v", c)
		}
		g := NewGuard(p, nil)
		for _, pu := range p.Purposes() {
			for _, c := range p.Categories() {
				g.Decide(pu.ID, c.ID, &State{Restricted: true})
			}
		}
	})
}
