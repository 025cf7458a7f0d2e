package activity

import (
	"context"
	"fmt"
	"time"

	"steward/internal/door"
	"steward/internal/jobs"
	"steward/internal/store"
)

// Job kinds this package runs through the job runner.
const (
	// JobDestroySalts deletes the salts (and seen-keys) of ended days.
	JobDestroySalts = "activity.destroy-salts"
)

// RegisterJobs registers the collector's periodic work with the runner:
// salt destruction every saltSweep (the retention sweep of package
// retention deletes raw events past their time), block
// building every ten minutes.
func (c *Collector) RegisterJobs(r *jobs.Runner) {
	r.Handle(JobDestroySalts, func(ctx context.Context, _ jobs.Job) error {
		n, err := c.DestroyExpiredSalts(ctx)
		if err == nil && n > 0 {
			c.log.Info("activity: destroyed ended days' salts", "salts", n)
		}
		return err
	})
	r.Every(JobDestroySalts, saltSweep)
	r.Handle(JobBlocks, func(ctx context.Context, _ jobs.Job) error {
		_, err := c.BuildBlocks(ctx)
		return err
	})
	r.Every(JobBlocks, 10*time.Minute)
}

// DestroyExpiredSalts deletes the salt of every site-day that ended more
// than the grace period ago, with that day's seen-keys, and forgets them in
// this process. Visitor hashes of that day can then never be recomputed or
// linked to another day's.
func (c *Collector) DestroyExpiredSalts(ctx context.Context) (int, error) {
	now := c.clock.Now()
	c.prune(now)
	return c.salts.destroyExpired(ctx, now, c.cfg.Sites)
}

// MemberEvent is one event linked to a member, as their export shows it.
type MemberEvent struct {
	Site          string    `json:"site"`
	At            time.Time `json:"at"`
	Type          string    `json:"type"`
	Page          string    `json:"page,omitempty"`
	Query         string    `json:"query,omitempty"`
	Referrer      string    `json:"referrer,omitempty"`
	Search        string    `json:"search,omitempty"`
	Link          string    `json:"link,omitempty"`
	Asset         string    `json:"asset,omitempty"`
	Name          string    `json:"name,omitempty"`
	Props         string    `json:"props,omitempty"`
	DurationMS    int64     `json:"duration_ms,omitempty"`
	Country       string    `json:"country,omitempty"`
	Region        string    `json:"region,omitempty"`
	City          string    `json:"city,omitempty"`
	Browser       string    `json:"browser,omitempty"`
	OS            string    `json:"os,omitempty"`
	Screen        string    `json:"screen,omitempty"`
	PolicyVersion int       `json:"policy_version"`
}

// MemberEvents returns the events linked to a subject, oldest first,
// opened for use (the rights engine reads the same rows through the
// registry for the access report and export).
func MemberEvents(ctx context.Context, q store.Q, d *door.Door, u door.Use, subjectID string) ([]MemberEvent, error) {
	v, err := d.Subject(ctx, q, u, subjectID)
	if err != nil {
		return nil, err
	}
	rows, err := q.QueryContext(ctx, selectMemberRows+` WHERE subject_id = $1 ORDER BY at, id`, v.ID())
	if err != nil {
		return nil, fmt.Errorf("activity: member events: %w", err)
	}
	rs, err := scanMemberRows(rows)
	if err != nil {
		return nil, fmt.Errorf("activity: member events: %w", err)
	}
	var out []MemberEvent
	for _, r := range rs {
		if _, err := openValues(ctx, &r, func(string) *door.View { return v }); err != nil {
			return nil, fmt.Errorf("activity: member events: %w", err)
		}
		e := r.ev
		out = append(out, MemberEvent{Site: e.Site, At: e.At.UTC(), Type: e.Type, Page: e.Page, Query: e.Query, Referrer: e.Referrer,
			Search: e.Search, Link: e.Link, Asset: e.Asset, Name: e.Name, Props: e.Props, DurationMS: e.DurationMS, Country: e.Country,
			Region: e.Region, City: e.City, Browser: e.Browser, OS: e.OS, Screen: e.Screen, PolicyVersion: e.PolicyVersion})
	}
	return out, nil
}

// EraseMember deletes every event linked to a subject (erasure). The
// rollups they were counted in keep their numbers: they hold no subject.
func EraseMember(ctx context.Context, q store.Q, subjectID string) (int64, error) {
	res, err := q.ExecContext(ctx, `DELETE FROM activity_member_events WHERE subject_id = $1`, subjectID)
	if err != nil {
		return 0, fmt.Errorf("activity: erase member events: %w", err)
	}
	n, _ := res.RowsAffected()
	return n, nil
}

// MergeMember re-points events of an email-only subject merged into a
// member (a subject.MergeHook).
func MergeMember(ctx context.Context, q store.Q, from, into string) error {
	if _, err := q.ExecContext(ctx, `UPDATE activity_member_events SET subject_id = $1 WHERE subject_id = $2`, into, from); err != nil {
		return fmt.Errorf("activity: merge member events: %w", err)
	}
	return nil
}
