package retention

import (
	"context"
	"fmt"
	"time"

	"steward/internal/policy"
)

// A Rollup holds aggregates counted from the rows of a registered table
// (the analytics rollups). They name no subject and no column dates them,
// so the sweep cannot find them through the registry: the holder ages
// them out when asked, once the rows they were counted from are past
// their time — coarsened where the rule keeps aggregates ("13 months,
// then monthly aggregates"), deleted otherwise, so nothing is kept
// forever. The app adapts each package that holds rollups.
type Rollup interface {
	// Source is the registered table the aggregates are counted from;
	// they follow the retention of its rows.
	Source() string
	// AgeOut ages out (or, in a dry run, counts) what was counted from
	// rows dated before a.Before, and says what it did per table.
	AgeOut(ctx context.Context, a AgeOut) ([]Aged, error)
}

// AgeOut is what the sweep asks of a Rollup.
type AgeOut struct {
	Before  time.Time
	Monthly bool // keep monthly aggregates
	// MonthlyFrom, when set, is when the versions keeping monthly
	// aggregates began: days begun before it are deleted, not coarsened.
	MonthlyFrom time.Time
	DryRun      bool
	// Pause rests between two transactions; an error stops the work,
	// leaving what finished done.
	Pause func(context.Context) error
}

// Aged is what ageing did, or would do, to one table.
type Aged struct {
	Table   string
	Removed int64
	Added   int64
	Oldest  *time.Time
}

// Events of rollup lines: the aggregates of a day go once it ended
// before the cutoff.
const (
	eventDayEnded = "day ended"
	eventCoarsen  = eventDayEnded + ", coarsened to months"
)

// sweepRollups ages out every rollup past its source's rule. Days follow
// the rule of the policy version they were collected under, shortened by
// every later one, as raw rows do (spans): the days are due up to the
// latest cutoff of any span, and a version that kept no monthly
// aggregates deletes the days collected under it (and, being stricter,
// before it), whatever a later one keeps. What is kept afterwards only
// ever turns from deleted to monthly along the spans, so one instant
// (MonthlyFrom) divides the days deleted from those coarsened.
func (s *Service) sweepRollups(ctx context.Context, now time.Time, dry bool, hist []era, current func(target) policy.Retention, catHolds map[string]bool) ([]Line, error) {
	var out []Line
	pause := s.pause
	if dry {
		pause = nil // a dry run changes nothing and has nothing to yield to
	}
	for _, r := range s.d.Rollups {
		var tg *target
		for _, t := range s.targets() {
			if t.t.Name == r.Source() && t.event == "collected" {
				tg = &t
				break
			}
		}
		if tg == nil {
			return out, fmt.Errorf("retention: rollups counted from %s, which the sweep does not date", r.Source())
		}
		rule := current(*tg)
		var cutoff, monthlyFrom time.Time
		due := false
		for _, sp := range spans(hist, tg.cat, rule) {
			c, ok := sp.rule.Cutoff(now)
			if !ok {
				continue
			}
			if !sp.to.IsZero() && sp.to.Before(c) {
				c = sp.to
			}
			if !due || c.After(cutoff) {
				cutoff, due = c, true
			}
			if sp.rule.Then != policy.ThenMonthly {
				monthlyFrom = sp.to // the days after this span may keep aggregates
			}
		}
		if !due {
			continue
		}
		monthly := rule.Then == policy.ThenMonthly
		ev := eventDayEnded
		if monthly {
			ev = eventCoarsen
		}
		held := catHolds[""] || anyHeld(tg.cats, catHolds)
		var aged []Aged
		var err error
		if !held {
			aged, err = r.AgeOut(ctx, AgeOut{Before: cutoff, Monthly: monthly, MonthlyFrom: monthlyFrom, DryRun: dry, Pause: pause})
		}
		for _, a := range aged {
			l := Line{Category: tg.cat, Table: a.Table, Rule: rule.String(), Event: ev, Cutoff: &cutoff, Due: a.Removed, Added: a.Added, Oldest: a.Oldest}
			out = append(out, l)
			if !dry {
				s.removed.WithLabelValues(tg.cat, a.Table).Add(float64(a.Removed))
			}
		}
		if held {
			out = append(out, Line{Category: tg.cat, Table: r.Source() + " rollups", Rule: rule.String(), Event: ev, Cutoff: &cutoff, Kept: "legal-hold"})
		}
		if err != nil {
			return out, err
		}
	}
	return out, nil
}
