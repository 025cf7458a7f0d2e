package rights

import (
	"encoding/csv"
	"strings"
	"testing"
)

func TestCSVFieldsReadBack(t *testing.T) {
	fields := []string{"plain", "with,comma", `with "quote"`, "line\nbreak", " lead", "", "=formula", "cr\r"}
	line := append(appendCSV(nil, fields...), '\r', '\n')
	got, err := csv.NewReader(strings.NewReader(string(line))).Read()
	if err != nil {
		t.Fatal(err)
	}
	for i := range fields {
		if got[i] != fields[i] && !(fields[i] == "cr\r" && got[i] == "cr\n") {
			t.Errorf("field %d: got %q, want %q", i, got[i], fields[i])
		}
	}
}

// TestCSVValueDefusesFormulas: a value a spreadsheet would run as a
// formula gets a leading apostrophe; numbers such as phone numbers do not.
func TestCSVValueDefusesFormulas(t *testing.T) {
	for in, want := range map[string]string{
		"=HYPERLINK(\"x\")": "'=HYPERLINK(\"x\")", "@SUM(A1)": "'@SUM(A1)", "+SUM(1)": "'+SUM(1)", "-2+3+cmd|' /C calc'!A0": "'-2+3+cmd|' /C calc'!A0",
		"+44 20 7946 0001": "+44 20 7946 0001", "-12.5": "-12.5", "plain": "plain", "": "",
	} {
		if got := csvValue(in); got != want {
			t.Errorf("csvValue(%q) = %q, want %q", in, got, want)
		}
	}
}

// TestSafeName: upload names become plain names inside files/.
func TestSafeName(t *testing.T) {
	for in, want := range map[string]string{
		"../../etc/passwd":                "passwd",
		`..\..\windows\win.ini`:           "win.ini",
		"/abs/path/x.jpg":                 "x.jpg",
		"CON.txt":                         "_CON.txt",
		"a\x00b\nc.txt":                   "a_b_c.txt",
		"...":                             "file",
		".hidden":                         "hidden",
		"naïve café.png":                  "naïve café.png",
		"C:evil.exe":                      "C_evil.exe",
		strings.Repeat("x", 300) + ".pdf": strings.Repeat("x", 96) + ".pdf",
	} {
		if got := SafeName(in); got != want {
			t.Errorf("SafeName(%q) = %q, want %q", in, got, want)
		}
	}
}
