package activity

import (
	"context"
	"fmt"
	"slices"
	"time"

	"steward/internal/policy"
	"steward/internal/store"
)

// FromPolicy builds the collector's configuration from the policy in
// force: the sites, the fields the policy
// declares (nothing else is stored), the location granularity, whether
// members' events are linked to their account, the search parameter and
// the retention of raw events.
func FromPolicy(pub policy.Published) (Config, error) {
	p := pub.Policy
	cfg := Config{
		Fields:        map[string]bool{},
		LinkToAccount: p.LinksActivityToAccount(),
		SearchParam:   p.Analytics.SearchParam,
		PolicyVersion: pub.Number(),
	}
	for _, f := range AllFields {
		if p.CategoryOfField(f) != "" {
			cfg.Fields[f] = true
		}
	}
	// The coarser of what the location category allows and what analytics
	// asks for (policy check refuses the opposite, but never widen).
	g := p.LocationGranularity()
	if a := p.Analytics.LocationGranularity; a != "" && !a.Allows(g) {
		g = a // coarser, or unknown: then validate refuses it
	}
	cfg.Granularity = g
	for _, s := range p.Sites {
		loc, err := time.LoadLocation(s.TimeZone)
		if err != nil {
			return cfg, fmt.Errorf("activity: site %s: time zone %q: %w", s.ID, s.TimeZone, err)
		}
		cfg.Sites = append(cfg.Sites, Site{ID: s.ID, Origins: s.Origins, Location: loc})
	}
	if cat := p.CategoryOfField(FieldPage); cat != "" {
		if r, ok := p.Retention(cat); ok && r.Kind == policy.RetainPeriod && !r.Period.IsZero() {
			period := r.Period
			cfg.Retention = period.SubtractFrom
		}
	}
	return cfg, nil
}

// StateLoader loads a subject's current state (internal/subject.Store).
type StateLoader interface {
	State(ctx context.Context, q store.Q, id string) (*policy.State, error)
}

// PolicyGate decides about signed-in members' events with the policy
// guard: an event is recorded only when at least one declared purpose that
// uses activity may still use the member's activity (no objection to all
// of them, no restriction), and linked to the account only when the policy
// links activity to accounts.
type PolicyGate struct {
	db       *store.DB
	guard    *policy.Guard
	states   StateLoader
	category string
	purposes []string
	link     bool
}

// NewPolicyGate returns the gate for a policy.
func NewPolicyGate(db *store.DB, p *policy.Policy, g *policy.Guard, states StateLoader) *PolicyGate {
	gate := &PolicyGate{db: db, guard: g, states: states, category: p.CategoryOfField(FieldPage), link: p.LinksActivityToAccount()}
	for _, pu := range p.Purposes() {
		if !pu.Builtin && gate.category != "" && slices.Contains(pu.Uses, gate.category) {
			gate.purposes = append(gate.purposes, pu.ID)
		}
	}
	return gate
}

// LinkMember implements MemberGate.
func (g *PolicyGate) LinkMember(ctx context.Context, subjectID string) (Link, error) {
	st, err := g.states.State(ctx, g.db, subjectID)
	if err != nil {
		return DoNotRecord, err
	}
	for _, purpose := range g.purposes {
		if g.guard.Decide(purpose, g.category, st).Allowed {
			if g.link {
				return LinkAccount, nil
			}
			return RecordAnonymously, nil
		}
	}
	return DoNotRecord, nil
}
