package services

import (
	"context"
	"time"

	"steward/internal/activity"
	"steward/internal/retention"
	"steward/internal/schema"
)

// sweepEvery is how often the retention sweep runs.
const sweepEvery = time.Hour

// openRetention builds the sweep over the whole registry, with the
// analytics rollups it ages out, and schedules it on the leased runner.
func (s *Services) openRetention() error {
	reg, err := schema.Registry()
	if err != nil {
		return err
	}
	s.Rollups = []retention.Rollup{activityRollups{activity.NewRollups(s.DB, s.Activity.Sites(), s.Policy.Policy.Analytics.KAnonymity)}}
	if s.Retention, err = retention.New(retention.Deps{DB: s.DB, Clock: s.Clock, Log: s.Log, Policy: s.Policy.Policy, Registry: reg,
		Subjects: s.Subjects, Door: s.Door, Audit: s.Audit, Rights: s.Rights, Metrics: s.Metrics, Rollups: s.Rollups}); err != nil {
		return err
	}
	s.Retention.RegisterJobs(s.Jobs, sweepEvery)
	return nil
}

// activityRollups lets the sweep age out the analytics rollups: package
// retention knows no feature, package activity no sweep.
type activityRollups struct{ r *activity.Rollups }

// Source: the rollups count the anonymous events.
func (a activityRollups) Source() string { return "activity_events" }

func (a activityRollups) AgeOut(ctx context.Context, q retention.AgeOut) ([]retention.Aged, error) {
	aged, err := a.r.AgeOut(ctx, activity.AgeOut{Before: q.Before, Monthly: q.Monthly, MonthlyFrom: q.MonthlyFrom, DryRun: q.DryRun, Pause: q.Pause})
	out := make([]retention.Aged, 0, len(aged))
	for _, g := range aged {
		r := retention.Aged{Table: g.Table, Removed: g.Removed, Added: g.Added}
		if d, err := time.Parse(time.DateOnly, g.Oldest); err == nil {
			r.Oldest = &d
		}
		out = append(out, r)
	}
	return out, err
}
