package disclosure_test

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"steward/internal/disclosure"
)

// span reads a published account figure ("0", "1-9", "10-19") back into
// the range it stands for.
func span(t *testing.T, s string) (lo, hi int) {
	t.Helper()
	if n, err := fmt.Sscanf(s, "%d-%d", &lo, &hi); err == nil && n == 2 {
		return lo, hi
	}
	if n, err := fmt.Sscanf(s, "%d", &lo); err == nil && n == 1 {
		return lo, lo
	}
	t.Fatalf("account figure %q is neither a number nor a band", s)
	return 0, 0
}

// recoverable reports the rows of p whose banded account count a reader
// can work out exactly from the period's total and the other rows, each
// request counting for one account at least.
func recoverable(t *testing.T, p disclosure.Period) []disclosure.Row {
	t.Helper()
	type rng struct{ lo, hi int }
	rows := make([]rng, len(p.Rows))
	sumLo, sumHi := 0, 0
	for i, r := range p.Rows {
		lo, hi := span(t, r.Accounts)
		rows[i] = rng{max(lo, r.Requests), hi}
		sumLo += rows[i].lo
		sumHi += rows[i].hi
	}
	totLo, totHi := span(t, p.Accounts)
	totLo = max(totLo, p.Requests)
	var out []disclosure.Row
	for i, r := range p.Rows {
		lo, hi := span(t, r.Accounts)
		if lo == hi {
			continue // shown exactly: nothing to recover
		}
		others := rng{sumLo - rows[i].lo, sumHi - rows[i].hi}
		if max(rows[i].lo, totLo-others.hi) == min(rows[i].hi, totHi-others.lo) {
			out = append(out, r)
		}
	}
	return out
}

// M13: no account figure the report publishes gives a banded one back by
// subtraction: the reviewer's case (a row of 12, a banded row of 1, a
// total of 13) leaves the banded row a range; nor does watching the
// current half-year grow, request by request, give a request's count.
func TestTransparencyBandsCannotBeSubtracted(t *testing.T) {
	each(t, envOpts{policy: "mixi.yaml"}, func(t *testing.T, e *env) {
		var ids []string
		for i := range 13 {
			ids = append(ids, e.member("m"+jsonInt(int64(i))+"@example.org", "M"))
		}
		read := func() disclosure.Period {
			t.Helper()
			rep, err := e.d.Transparency(e.ctx)
			if err != nil {
				t.Fatal(err)
			}
			if len(rep.Periods) != 1 {
				t.Fatalf("periods %+v", rep.Periods)
			}
			return rep.Periods[0]
		}
		steps := []struct {
			kind     string
			subjects []string
		}{
			{disclosure.KindCourtOrder, ids[:1]},
			{disclosure.KindCourtOrder, ids[1:12]},
			{disclosure.KindEmergency, ids[12:13]},
		}
		prev := read()
		for _, st := range steps {
			if _, err := e.d.RecordLegalRequest(e.ctx, "officer", disclosure.LegalInput{Kind: st.kind, Jurisdiction: "JP",
				Authority: "Authority X", Subjects: st.subjects, Categories: []string{"identity"}, Decision: disclosure.DecisionComplied,
				DecisionReason: "r", Notify: disclosure.NotifyNever, NotifyReason: "emergency"}); err != nil {
				t.Fatal(err)
			}
			p := read()
			if got := recoverable(t, p); len(got) != 0 {
				t.Fatalf("period %+v: rows %+v can be worked out from the others", p, got)
			}
			// The request just recorded named len(st.subjects) accounts:
			// the change in the total must leave it a range.
			lo0, hi0 := span(t, prev.Accounts)
			lo1, hi1 := span(t, p.Accounts)
			if max(1, lo1-hi0) == hi1-lo0 {
				t.Fatalf("the total went from %s to %s: the new request's %d accounts show", prev.Accounts, p.Accounts, len(st.subjects))
			}
			prev = p
		}
		if prev.Accounts != "10-19" || prev.Requests != 3 {
			t.Fatalf("period %+v, want 3 requests and 10-19 accounts", prev)
		}
		for _, r := range prev.Rows {
			want := map[string]string{disclosure.KindCourtOrder: "10-19", disclosure.KindEmergency: "1-9"}[r.Kind]
			if r.Accounts != want {
				t.Fatalf("row %+v, want accounts %s", r, want)
			}
		}
	})
}

// M13: an ended half-year's figures are those of its end. A decision
// changed on one of its requests after it ended, before anyone read the
// report, leaves it as it stood when it ended.
func TestTransparencyEndedHalfYearKeepsItsEndFigures(t *testing.T) {
	each(t, envOpts{policy: "mixi.yaml"}, func(t *testing.T, e *env) {
		ann, bob := e.member("ann@example.org", "Ann"), e.member("bob@example.org", "Bob")
		rec := func(kind, decision, subject string) string {
			t.Helper()
			lr, err := e.d.RecordLegalRequest(e.ctx, "officer", disclosure.LegalInput{Kind: kind, Jurisdiction: "JP", Authority: "Authority X",
				Subjects: []string{subject}, Categories: []string{"identity"}, Decision: decision, DecisionReason: "r",
				Notify: disclosure.NotifyNever, NotifyReason: "emergency"})
			if err != nil {
				t.Fatal(err)
			}
			return lr.ID
		}
		e.clk.Set(time.Date(2026, 6, 30, 12, 0, 0, 0, time.UTC))
		rec(disclosure.KindCourtOrder, disclosure.DecisionComplied, ann)
		emergency := rec(disclosure.KindEmergency, disclosure.DecisionPending, bob)
		before, err := e.d.Transparency(e.ctx)
		if err != nil {
			t.Fatal(err)
		}
		end := time.Date(2026, 7, 1, 0, 0, 0, 0, time.UTC)
		e.clk.Set(end.Add(24 * time.Hour))
		if _, err := e.d.Decide(e.ctx, "officer", emergency, disclosure.DecisionRefused, "no emergency"); err != nil {
			t.Fatal(err)
		}
		rep, err := e.d.Transparency(e.ctx)
		if err != nil {
			t.Fatal(err)
		}
		if len(rep.Periods) != 2 || rep.Periods[1].Period != "2026-H1" {
			t.Fatalf("periods %+v", rep.Periods)
		}
		got, want := rep.Periods[1], before.Periods[0]
		if !got.Final || !slices.Equal(got.Rows, want.Rows) || got.Requests != want.Requests || got.Accounts != want.Accounts {
			t.Fatalf("2026-H1 after it ended: %+v, want the figures at its end %+v", got, want)
		}
		if at, err := time.Parse(time.RFC3339, got.Published); err != nil || at.Before(end) {
			t.Fatalf("published_at %q: want a time after the half-year's end", got.Published)
		}
		// The register itself has the new decision.
		if lr, err := e.d.LegalRequest(e.ctx, emergency); err != nil || lr.Decision != disclosure.DecisionRefused {
			t.Fatalf("the request: %+v %v", lr, err)
		}
	})
}
