package rights

import (
	"encoding/csv"
	"path"
	"strings"
	"testing"
	"unicode/utf8"
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
		// An "extension" over 20 bytes is cut with the name; it panicked.
		"a." + strings.Repeat("b", 150): "a." + strings.Repeat("b", 98),
		// Windows reads the device name up to the first dot and without
		// trailing spaces; shortening can bare one.
		"con.tar.gz":                                            "_con.tar.gz",
		"nul .txt":                                              "_nul .txt",
		"con" + strings.Repeat(" ", 93) + ".pdf":                "_con.pdf",
		"aux" + strings.Repeat(" ", 200) + "x":                  "_aux",
		strings.Repeat("y", 98) + " . " + ".pdf":                strings.Repeat("y", 96) + ".pdf",
		strings.Repeat("é", 60) + "." + strings.Repeat("z", 30): strings.Repeat("é", 50),
	} {
		got := SafeName(in)
		if got != want {
			t.Errorf("SafeName(%q) = %q, want %q", in, got, want)
		}
		if again := SafeName(got); again != got {
			t.Errorf("SafeName(%q) = %q, but SafeName of that is %q", in, got, again)
		}
	}
}

// FuzzSafeName: whatever the upload was called, its name in the ZIP is a
// plain, bounded, valid file name that SafeName leaves as it is.
func FuzzSafeName(f *testing.F) {
	for _, s := range []string{"../../etc/passwd", `..\..\win.ini`, "CON.txt", "a\x00b\nc.txt", "...", ".hidden",
		"naïve café.png", "C:evil.exe", "a." + strings.Repeat("b", 150), strings.Repeat("x", 300) + ".pdf",
		"con" + strings.Repeat(" ", 93) + ".pdf", "\xff\xfe.txt", "日本語のファイル名.txt"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		got := SafeName(in)
		switch {
		case got == "":
			t.Fatalf("SafeName(%q) is empty", in)
		case len(got) > maxSafeName:
			t.Fatalf("SafeName(%q) = %q, %d bytes, over %d", in, got, len(got), maxSafeName)
		case !utf8.ValidString(got):
			t.Fatalf("SafeName(%q) = %q, not valid UTF-8", in, got)
		case strings.ContainsAny(got, "/\\\x00:"):
			t.Fatalf("SafeName(%q) = %q holds a separator, colon or NUL", in, got)
		case strings.HasPrefix(got, "."), strings.HasSuffix(got, "."), strings.HasSuffix(got, " "):
			// No leading dot also rules out "." and "..".
			t.Fatalf("SafeName(%q) = %q starts with a dot or ends with a dot or space", in, got)
		case reserved(got):
			t.Fatalf("SafeName(%q) = %q is a Windows device name", in, got)
		}
		if p := path.Clean("files/" + got); !strings.HasPrefix(p, "files/") || p != "files/"+got {
			t.Fatalf("SafeName(%q) = %q leaves files/ or is not clean: %q", in, got, p)
		}
		if again := SafeName(got); again != got {
			t.Fatalf("SafeName(%q) = %q, but SafeName of that is %q", in, got, again)
		}
	})
}
