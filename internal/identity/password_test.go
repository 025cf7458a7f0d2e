package identity

import (
	"net/netip"
	"runtime"
	"strings"
	"testing"
	"time"

	"steward/internal/fault"
)

func TestDefaultArgon2ParamsString(t *testing.T) {
	h, err := hashPassword("correct horse battery staple", DefaultArgon2)
	if err != nil {
		t.Fatal(err)
	}
	const want = "$argon2id$v=19$m=19456,t=2,p=1$"
	if !strings.HasPrefix(h, want) {
		t.Fatalf("hash = %q, want prefix %q", h, want)
	}
	ok, weaker, err := verifyPassword("correct horse battery staple", h, DefaultArgon2)
	if err != nil || !ok || weaker {
		t.Fatalf("verify = %v, %v, %v; want true, false, nil", ok, weaker, err)
	}
	if DefaultArgon2.Memory < 19*1024 || DefaultArgon2.Time < 2 || DefaultArgon2.Threads < 1 {
		t.Fatalf("default parameters %+v are below m=19 MiB, t=2, p=1", DefaultArgon2)
	}
}

func TestVerifyPassword(t *testing.T) {
	low := Argon2{Memory: 64, Time: 1, Threads: 1, SaltLen: 16, KeyLen: 32}
	h, err := hashPassword("a long enough passphrase", low)
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name        string
		pw          string
		current     Argon2
		ok, weaker  bool
		wantErr     bool
		encodedOver string
	}{
		{name: "right", pw: "a long enough passphrase", current: low, ok: true},
		{name: "wrong", pw: "a long enough passphrasE", current: low},
		{name: "stronger parameters now", pw: "a long enough passphrase", current: DefaultArgon2, ok: true, weaker: true},
		{name: "garbage hash", pw: "x", current: low, wantErr: true, encodedOver: "$2b$10$abc"},
		{name: "missing parameter", pw: "x", current: low, wantErr: true, encodedOver: "$argon2id$v=19$m=64,t=1$c2FsdA$a2V5"},
		{name: "wrong version", pw: "x", current: low, wantErr: true, encodedOver: "$argon2id$v=16$m=64,t=1,p=1$c2FsdA$a2V5"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			enc := h
			if c.encodedOver != "" {
				enc = c.encodedOver
			}
			ok, weaker, err := verifyPassword(c.pw, enc, c.current)
			if (err != nil) != c.wantErr {
				t.Fatalf("err = %v, want error %v", err, c.wantErr)
			}
			if ok != c.ok || weaker != c.weaker {
				t.Fatalf("got ok=%v weaker=%v, want ok=%v weaker=%v", ok, weaker, c.ok, c.weaker)
			}
		})
	}
}

func TestPasswordRules(t *testing.T) {
	personal := personalInputs("Alice Wonderland", "alice.w@example.org")
	cases := []struct {
		name string
		pw   string
		code fault.Code // "" means accepted
	}{
		{name: "14 characters", pw: "plum vase rugs", code: fault.Invalid},
		{name: "15 characters", pw: "plum vase rugby", code: ""},
		{name: "15 characters counted as runes, not bytes", pw: "éèêëēėę ŵŷẑ ôöò", code: ""},
		{name: "combining accents count once after NFC", pw: "e\u0301e\u0301e\u0301e\u0301e\u0301e\u0301e\u0301", code: fault.Invalid},
		{name: "64 characters", pw: strings.Repeat("tulip orbit ", 5) + "zinc", code: ""},
		{name: "256 characters", pw: strings.Repeat("q7Zp", 64), code: ""},
		{name: "257 characters", pw: strings.Repeat("q7Zp", 64) + "x", code: fault.TooLarge},
		{name: "common doubled", pw: "passwordpassword", code: fault.Invalid},
		{name: "digit run", pw: "123456789012345", code: fault.Invalid},
		{name: "keyboard walk", pw: "qwertyuiopasdfgh", code: fault.Invalid},
		{name: "common words and digits", pw: "iloveyou12345678", code: fault.Invalid},
		{name: "contains the email local part", pw: "zebra ALICE.W orchard", code: fault.Invalid},
		{name: "contains the name", pw: "my name is wonderland!", code: fault.Invalid},
		{name: "no composition rules: all lower case words", pw: "mango tractor lighthouse", code: ""},
		{name: "control character", pw: "mango tractor\x00lighthouse", code: fault.Invalid},
		{name: "invalid UTF-8", pw: "mango tractor \xff lighthouse", code: fault.Invalid},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			pw, err := normalizePassword("password", c.pw)
			if err == nil {
				err = checkNewPassword("password", pw, personal)
			}
			if got := codeOrEmpty(err); got != c.code {
				t.Fatalf("password %q: got %q (%v), want %q", c.pw, got, err, c.code)
			}
		})
	}
}

func codeOrEmpty(err error) fault.Code {
	if err == nil {
		return ""
	}
	return fault.CodeOf(err)
}

// A 10 MB password is refused on its length before any other work.
func TestHugePasswordRefusedCheaply(t *testing.T) {
	// "Cheaply" is measured in bytes allocated, not wall time (which a
	// loaded machine makes meaningless): normalising or hashing a 10 MB
	// password would allocate at least its size again.
	huge := strings.Repeat("a", 10<<20)
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	_, err := normalizePassword("password", huge)
	runtime.ReadMemStats(&after)
	if fault.CodeOf(err) != fault.TooLarge {
		t.Fatalf("got %v, want too_large", err)
	}
	if got := after.TotalAlloc - before.TotalAlloc; got > 64<<10 {
		t.Fatalf("refusing a 10 MB password allocated %d bytes, want under 64 KiB", got)
	}
}

func TestNetworks(t *testing.T) {
	cases := []struct {
		ip               string
		limitUnit, shown string
	}{
		{"203.0.113.77", "203.0.113.77/32", "203.0.113.0/24"},
		{"::ffff:203.0.113.77", "203.0.113.77/32", "203.0.113.0/24"},
		{"2001:db8:1234:5678:9abc::1", "2001:db8:1234:5678::/64", "2001:db8:1234::/48"},
	}
	for _, c := range cases {
		ip := netip.MustParseAddr(c.ip)
		if got := network(ip).String(); got != c.limitUnit {
			t.Errorf("network(%s) = %s, want %s", c.ip, got, c.limitUnit)
		}
		if got := truncatedNetwork(ip); got != c.shown {
			t.Errorf("truncatedNetwork(%s) = %s, want %s", c.ip, got, c.shown)
		}
	}
	if network(netip.Addr{}).IsValid() || truncatedNetwork(netip.Addr{}) != "" {
		t.Errorf("no address must give no network")
	}
}

func TestUserAgentFamily(t *testing.T) {
	cases := map[string]string{
		"Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0":                                          "Firefox on Linux",
		"Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.0.0 Safari/537.36": "Chrome on Windows",
		"": "",
	}
	for ua, want := range cases {
		if got := userAgentFamily(ua); got != want {
			t.Errorf("userAgentFamily(%q) = %q, want %q", ua, got, want)
		}
	}
}

func TestAgeOn(t *testing.T) {
	d := func(s string) time.Time { t, _ := time.Parse(dateLayout, s); return t }
	cases := []struct {
		dob, on string
		want    int
	}{
		{"2008-06-15", "2026-06-14", 17},
		{"2008-06-15", "2026-06-15", 18},
		{"2008-02-29", "2026-02-28", 17},
		{"2008-02-29", "2026-03-01", 18},
	}
	for _, c := range cases {
		if got := ageOn(d(c.dob), d(c.on)); got != c.want {
			t.Errorf("ageOn(%s, %s) = %d, want %d", c.dob, c.on, got, c.want)
		}
	}
}
