package activity

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"steward/internal/door"
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
	return cfg, nil
}

// PolicyGate decides about signed-in members' events through the door:
// an event is recorded only when at least one declared purpose that uses
// activity may still use the member's activity (no objection to all of
// them, no restriction, under the stricter policy version where the member
// has not accepted a change), and linked to the account only when the
// policy links activity to accounts. A linked event's values are sealed
// with the member's keys, each under a purpose that may use its category;
// a value no purpose may use for this member is not recorded. Refusals are
// audited, aggregated per minute (collection is a hot path).
type PolicyGate struct {
	db   *store.DB
	door *door.Door
	// category is the category of pages viewed; purposes are the declared
	// purposes using each category of the activity fields.
	category string
	purposes map[string][]string
	link     bool
}

// NewPolicyGate returns the gate for the policy the door enforces.
func NewPolicyGate(db *store.DB, d *door.Door) *PolicyGate {
	p := d.Policy()
	gate := &PolicyGate{db: db, door: d, category: p.CategoryOfField(FieldPage), purposes: map[string][]string{},
		link: p.LinksActivityToAccount()}
	for _, f := range AllFields {
		cat := p.CategoryOfField(f)
		if cat == "" || gate.purposes[cat] != nil {
			continue
		}
		gate.purposes[cat] = []string{}
		for _, pu := range p.Purposes() {
			if !pu.Builtin && slices.Contains(pu.Uses, cat) {
				gate.purposes[cat] = append(gate.purposes[cat], pu.ID)
			}
		}
	}
	return gate
}

// use is the collector's use of a member's data for a purpose.
func use(purpose string) door.Use {
	return door.Use{Purpose: purpose, Actor: door.ActorSystem, Hot: true}
}

// allowed returns a view, of v's subject, for the first purpose using the
// category that the subject's state allows (v itself when its own does),
// or nil when none does.
func (g *PolicyGate) allowed(v *door.View, category string) *door.View {
	if slices.Contains(g.purposes[category], v.Use().Purpose) && v.Check(category) == nil {
		return v
	}
	for _, p := range g.purposes[category] {
		if w := v.For(use(p)); w.Check(category) == nil {
			return w
		}
	}
	return nil
}

// member decides about a signed-in member's event; when link asks for the
// event to be linked to the account and the policy and the member's state
// allow it, it seals the event's values for them.
func (g *PolicyGate) member(ctx context.Context, ev *Event, subjectID string, link bool) (Link, error) {
	purposes := g.purposes[g.category]
	if len(purposes) == 0 {
		return DoNotRecord, nil
	}
	first, err := g.door.Subject(ctx, g.db, use(purposes[0]), subjectID)
	if err != nil {
		return DoNotRecord, err
	}
	v := g.allowed(first, g.category)
	if v == nil {
		// Recorded as a denial (aggregated per minute), then dropped.
		if err := first.AllowedCategory(ctx, g.category); err != nil {
			if _, denied := door.IsDenied(err); !denied {
				return DoNotRecord, err
			}
		}
		return DoNotRecord, nil
	}
	if !link || !g.link {
		return RecordAnonymously, nil
	}
	sealed := new(sealedValues)
	texts := ev.texts()
	for i, c := range sealedColumns {
		if *texts[i] == "" {
			continue
		}
		w := g.allowed(v, g.door.Policy().CategoryOfField(c.Field))
		if w == nil {
			*texts[i] = "" // no purpose may use it for this member
			continue
		}
		if sealed[i], err = w.Seal(ctx, c.Field, *texts[i]); errors.Is(err, door.ErrShredded) {
			// The member erased their activity: not linked again until
			// the category is collected anew (door.Revive).
			return RecordAnonymously, nil
		} else if err != nil {
			return DoNotRecord, err
		}
	}
	ev.sealed = sealed
	return LinkAccount, nil
}

// open opens member events read back (the rollups' catch-up), each value
// for a purpose the member's state still allows for its category. A row
// no purpose using activity may read any more, or whose keys were
// destroyed, is left out.
func (g *PolicyGate) open(ctx context.Context, q store.Q, rows []memberRow) ([]memberRow, error) {
	purposes := g.purposes[g.category]
	if len(rows) == 0 || len(purposes) == 0 {
		return rows[:0], nil
	}
	ids := make([]string, 0, len(rows))
	seen := map[string]bool{}
	for _, r := range rows {
		if !seen[r.subject] {
			seen[r.subject] = true
			ids = append(ids, r.subject)
		}
	}
	b, err := g.door.Subjects(ctx, q, use(purposes[0]), ids)
	if err != nil {
		return nil, err
	}
	out := rows[:0]
	for _, r := range rows {
		v, err := b.View(r.subject)
		if err != nil {
			continue
		}
		if v = g.allowed(v, g.category); v == nil {
			continue
		}
		ok, err := openValues(ctx, &r, func(field string) *door.View {
			return g.allowed(v, g.door.Policy().CategoryOfField(field))
		})
		if err != nil {
			return nil, err
		}
		if ok {
			out = append(out, r)
		}
	}
	return out, nil
}
