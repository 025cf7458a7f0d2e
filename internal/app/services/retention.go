package services

import (
	"time"

	"steward/internal/retention"
	"steward/internal/schema"
)

// sweepEvery is how often the retention sweep runs.
const sweepEvery = time.Hour

// openRetention builds the sweep over the whole registry and schedules it
// on the leased runner.
func (s *Services) openRetention() error {
	reg, err := schema.Registry()
	if err != nil {
		return err
	}
	if s.Retention, err = retention.New(retention.Deps{DB: s.DB, Clock: s.Clock, Log: s.Log, Policy: s.Policy.Policy, Registry: reg,
		Subjects: s.Subjects, Door: s.Door, Audit: s.Audit, Rights: s.Rights, Metrics: s.Metrics}); err != nil {
		return err
	}
	s.Retention.RegisterJobs(s.Jobs, sweepEvery)
	return nil
}
