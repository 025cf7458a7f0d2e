package policy

import (
	"fmt"
	"os"
	"strings"
	"testing"
	"time"
)

func TestParseRetention(t *testing.T) {
	tests := []struct {
		in, canon string
		kind      RetentionKind
		wantErr   bool
	}{
		{"13 months", "13 months", RetainPeriod, false},
		{"30 days", "30 days", RetainPeriod, false},
		{"7 years", "7 years", RetainPeriod, false},
		{"1 year", "1 year", RetainPeriod, false},
		{"2 weeks", "14 days", RetainPeriod, false},
		{"1 year 6 months", "1 year 6 months", RetainPeriod, false},
		{"1 year, 6 months and 2 days", "1 year 6 months 2 days", RetainPeriod, false},
		{"Account-Lifetime", "account-lifetime", RetainAccountLifetime, false},
		{"account-lifetime + 30 days", "account-lifetime + 30 days", RetainAccountLifetime, false},
		{"account-lifetime+3 years", "account-lifetime + 3 years", RetainAccountLifetime, false},
		{"archive", "archive", RetainArchive, false},
		{"13 months, then monthly aggregates", "13 months, then monthly aggregates", RetainPeriod, false},
		{"13 Months then  Monthly Aggregates", "13 months, then monthly aggregates", RetainPeriod, false},
		{"13 months, then weekly aggregates", "", 0, true},
		{"13 months, then", "", 0, true},
		{"account-lifetime, then monthly aggregates", "", 0, true},
		{"archive, then monthly aggregates", "", 0, true},
		{"then monthly aggregates", "", 0, true},
		{"", "", 0, true},
		{"0 days", "", 0, true},
		{"13", "", 0, true},
		{"13 moons", "", 0, true},
		{"forever", "", 0, true},
		{"-1 days", "", 0, true},
		{"1 month 1 month", "", 0, true},
		{"account-lifetime 30 days", "", 0, true},
		{"account-lifetime + nothing", "", 0, true},
	}
	for _, tt := range tests {
		r, err := ParseRetention(tt.in)
		if (err != nil) != tt.wantErr {
			t.Errorf("ParseRetention(%q) error = %v, want error %v", tt.in, err, tt.wantErr)
			continue
		}
		if err != nil {
			continue
		}
		if r.String() != tt.canon || r.Kind != tt.kind {
			t.Errorf("ParseRetention(%q) = %q (%v), want %q (%v)", tt.in, r, r.Kind, tt.canon, tt.kind)
		}
		back, err := ParseRetention(r.String())
		if err != nil || back != r {
			t.Errorf("round trip of %q: %v, %v", r, back, err)
		}
	}
}

func TestRetentionOrder(t *testing.T) {
	rr := func(s string) Retention {
		r, err := ParseRetention(s)
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	tests := []struct {
		a, b   string
		longer bool
	}{
		{"13 months", "1 year", true},
		{"1 year", "13 months", false},
		{"12 months", "1 year", false},
		{"366 days", "1 year", true},
		{"365 days", "1 year", false},
		{"7 years", "account-lifetime", false},
		{"account-lifetime", "7 years", true},
		{"account-lifetime + 30 days", "account-lifetime", true},
		{"archive", "account-lifetime + 10 years", true},
		{"archive", "archive", false},
	}
	for _, tt := range tests {
		if got := rr(tt.a).Longer(rr(tt.b)); got != tt.longer {
			t.Errorf("%s longer than %s = %v, want %v", tt.a, tt.b, got, tt.longer)
		}
	}
	if got := Shorter(rr("archive"), rr("30 days")); got.String() != "30 days" {
		t.Errorf("Shorter = %s", got)
	}
	if got := Shorter(Retention{}, rr("30 days")); got.String() != "30 days" {
		t.Errorf("Shorter with unset = %s", got)
	}
}

func TestRetentionCutoff(t *testing.T) {
	now := time.Date(2026, 3, 31, 12, 0, 0, 0, time.UTC)
	r, _ := ParseRetention("1 month")
	cut, ok := r.Cutoff(now)
	// Calendar months: 31 March minus one month is the end of February.
	if want := time.Date(2026, 2, 28, 12, 0, 0, 0, time.UTC); !ok || !cut.Equal(want) {
		t.Errorf("Cutoff = %v, %v; want %v", cut, ok, want)
	}
	r, _ = ParseRetention("13 months")
	if cut, _ := r.Cutoff(now); !cut.Equal(time.Date(2025, 2, 28, 12, 0, 0, 0, time.UTC)) {
		t.Errorf("13 months cutoff = %v", cut)
	}
	if _, ok := (Retention{Kind: RetainArchive}).Cutoff(now); ok {
		t.Error("archive has a cutoff")
	}
	p := Period{Months: 1, Days: 1}
	if got := p.AddTo(time.Date(2026, 1, 31, 0, 0, 0, 0, time.UTC)); !got.Equal(time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)) {
		t.Errorf("AddTo = %v", got)
	}
	if got := (Period{Years: 1, Months: 6}).ISO(); got != "P1Y6M" {
		t.Errorf("ISO = %s", got)
	}
}

// TestBadAfterwardsNamesItsLine: a misspelt "then" clause is refused at
// the retention line that holds it.
func TestBadAfterwardsNamesItsLine(t *testing.T) {
	data, err := os.ReadFile("../../examples/mixi.yaml")
	if err != nil {
		t.Fatal(err)
	}
	text := string(data)
	line := 0
	for i, l := range strings.Split(text, "\n") {
		if strings.HasPrefix(l, "  activity: 13 months, then monthly aggregates") {
			line = i + 1
		}
	}
	if line == 0 {
		t.Fatal("mixi.yaml keeps no monthly aggregates of activity")
	}
	for _, bad := range []string{"13 months, then weekly aggregates", "account-lifetime, then monthly aggregates"} {
		_, err := Parse("mixi.yaml", []byte(strings.Replace(text, "13 months, then monthly aggregates", bad, 1)))
		if want := fmt.Sprintf("mixi.yaml:%d:", line); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%q: got %v, want a problem at %s", bad, err, want)
		}
	}
}
