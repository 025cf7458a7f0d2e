package disclosure_test

import (
	"fmt"
	"testing"

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
