package retention

import (
	"context"
	"fmt"
	"sort"
	"time"

	"steward/internal/policy"
)

// era is a published version of the policy and when it came into force:
// when it was published, or for a significant change (announced ahead)
// its effective date if that is later.
type era struct {
	from time.Time
	pol  *policy.Policy
}

// span is the rule for rows collected in [from, to) (zero: unbounded).
type span struct {
	from, to time.Time
	rule     policy.Retention
}

// history returns the published versions of the policy, oldest first, the
// last being the one in force. Versions never change, so each is parsed
// once.
func (s *Service) history(ctx context.Context) ([]era, error) {
	list, err := policy.List(ctx, s.d.DB)
	if err != nil {
		return nil, err
	}
	sort.Slice(list, func(i, j int) bool { return list[i].Number < list[j].Number })
	s.histMu.Lock()
	defer s.histMu.Unlock()
	if s.parsed == nil {
		s.parsed = map[int]*policy.Policy{}
	}
	out := make([]era, 0, len(list))
	for i, v := range list {
		p := s.parsed[v.Number]
		if p == nil {
			if i == len(list)-1 && v.Hash == s.d.Policy.Hash() {
				p = s.d.Policy
			} else {
				full, err := policy.Get(ctx, s.d.DB, v.Number)
				if err != nil {
					return nil, err
				}
				if p, err = full.Policy(); err != nil {
					return nil, fmt.Errorf("retention: policy version %d: %w", v.Number, err)
				}
			}
			s.parsed[v.Number] = p
		}
		from := v.PublishedAt
		if v.Significant && p.EffectiveDate().After(from) {
			from = p.EffectiveDate()
		}
		out = append(out, era{from: from, pol: p})
	}
	if len(out) == 0 || out[len(out)-1].pol.Hash() != s.d.Policy.Hash() {
		// Not published (a test building the sweep alone): the policy
		// given is the only one.
		out = append(out, era{pol: s.d.Policy})
	}
	return out, nil
}

// inForce drops the versions not yet in force at now (a significant
// change announced for a later date); the first version always stays.
func inForce(hist []era, now time.Time) []era {
	out := hist[:1]
	for _, e := range hist[1:] {
		if !e.from.After(now) {
			out = append(out, e)
		}
	}
	return out
}

// spans works out the rule for rows of a category collected under each
// version: the shortest of that version's rule and every later one's (a
// version that did not state the category leaves it out). current is the
// rule in force, which the last span always follows.
func spans(hist []era, cat string, current policy.Retention) []span {
	if len(hist) <= 1 {
		return []span{{rule: current}}
	}
	out := make([]span, len(hist))
	rule := current
	for i := len(hist) - 1; i >= 0; i-- {
		if i < len(hist)-1 {
			if r, ok := Rule(hist[i].pol, cat); ok {
				shorter := policy.Shorter(rule, r)
				if r.Then == policy.ThenDelete || rule.Then == policy.ThenDelete {
					// What is kept afterwards follows the strictest
					// version too: once one keeps no aggregates, the days
					// collected before it keep none either.
					shorter.Then = policy.ThenDelete
				}
				rule = shorter
			}
		}
		out[i] = span{rule: rule}
		if i > 0 {
			out[i].from = hist[i].from
		}
		if i < len(hist)-1 {
			out[i].to = hist[i+1].from
		}
	}
	// Merge neighbours under the same rule.
	merged := out[:1]
	for _, sp := range out[1:] {
		last := &merged[len(merged)-1]
		if last.rule == sp.rule {
			last.to = sp.to
			continue
		}
		merged = append(merged, sp)
	}
	return merged
}
