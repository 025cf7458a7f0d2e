package retention_test

import (
	"strings"
	"testing"

	"steward/internal/policy"
	"steward/internal/retention"
)

// TestNoticeAndCoverShowTheRetentionTheSweepApplies: for every category
// of both example policies, the notice states the rule the sweep reads
// (retention.Rule), the Art. 15 cover sheet of a member holding it states
// the same words, and every line of the sweep for that category applies
// that rule.
func TestNoticeAndCoverShowTheRetentionTheSweepApplies(t *testing.T) {
	for _, name := range []string{"jmir.yaml", "mixi.yaml"} {
		t.Run(name, func(t *testing.T) {
			each(t, name, func(t *testing.T, e *env) {
				notice, err := policy.Render(e.pol, policy.Meta{Number: 1}, "markdown")
				if err != nil {
					t.Fatal(err)
				}
				ann := e.seed(t, "ann@example.org")
				sum, err := e.svc.Rights.Summarize(e.ctx, ann)
				if err != nil {
					t.Fatal(err)
				}
				cover := map[string]string{}
				for _, c := range sum.Cover.Categories {
					cover[c.ID] = c.Retention
				}
				plan, err := e.svc.Retention.Plan(e.ctx)
				if err != nil {
					t.Fatal(err)
				}
				for _, c := range e.pol.Categories() {
					rule, ok := retention.Rule(e.pol, c.ID)
					if !ok {
						t.Errorf("%s: no rule", c.ID)
						continue
					}
					if line := "- " + c.ID + ": " + rule.Describe(); !strings.Contains(string(notice), line) {
						t.Errorf("the notice lacks %q", line)
					}
					if got, held := cover[c.ID]; held && got != rule.Describe() {
						t.Errorf("%s: the cover sheet says %q, the sweep applies %q", c.ID, got, rule.Describe())
					}
					for _, l := range plan.Lines {
						if l.Category == c.ID && l.Rule != rule.String() {
							t.Errorf("%s/%s: the sweep applies %q, the policy says %q", c.ID, l.Table, l.Rule, rule)
						}
					}
				}
				if len(cover) < 3 {
					t.Errorf("the cover sheet lists only %v", cover)
				}
			})
		})
	}
}
