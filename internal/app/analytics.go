package app

import (
	"context"
	"database/sql"
	"fmt"
	"net/url"
	"slices"
	"strings"

	"github.com/prometheus/client_golang/prometheus"

	"steward/internal/activity"
	"steward/internal/analytics"
)

// openAnalytics builds cookieless collection and its reports: the
// collector (configured from the policy: sites, declared fields, location
// granularity, account linking, retention; an operator MMDB for region and
// city when --geoip-mmdb is given), its jobs (salt destruction, retention), the
// merge hook for linked events, its metrics, and the report service with
// the policy's trends settings. The collector's writer starts here, so
// the handler works before Serve; Serve and Close drain it.
func (a *App) openAnalytics(ctx context.Context) error {
	cfg, err := activity.FromPolicy(a.Policy)
	if err != nil {
		return err
	}
	if a.servesDemo() {
		cfg.Sites = withOwnOrigin(cfg.Sites, demoSite, a.Config.BaseURL)
	}
	var geo *activity.Geo
	if a.Config.GeoIPPath != "" {
		if geo, err = activity.OpenGeo(a.Config.GeoIPPath); err != nil {
			return err
		}
		a.Log.Info("region and city from an operator MMDB", "built", geo.BuildTime().Format("2006-01-02"))
	}
	a.Activity, err = activity.New(activity.Deps{DB: a.DB, Clock: a.Clock, Log: a.Log, Config: cfg, Geo: geo,
		Members: activity.NewPolicyGate(a.DB, a.Policy.Policy, a.Guard, a.Subjects)})
	if err != nil {
		return err
	}
	a.Activity.RegisterJobs(a.Jobs)
	a.Subjects.OnMerge(func(ctx context.Context, tx *sql.Tx, from, into string) error {
		return activity.MergeMember(ctx, tx, from, into)
	})
	if a.Analytics, err = analytics.New(a.DB, a.Clock, a.Activity.Sites(), analytics.TrendsFromPolicy(a.Policy.Policy)); err != nil {
		return err
	}
	if a.Metrics != nil {
		stats := func(f func(activity.Stats) int64) func() float64 {
			return func() float64 { return float64(f(a.Activity.Stats())) }
		}
		for _, c := range []prometheus.Collector{
			prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "steward_activity_events_committed_total",
				Help: "Events durably committed by the collector."}, stats(func(s activity.Stats) int64 { return s.Events })),
			prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "steward_activity_batches_total",
				Help: "Group-commit transactions."}, stats(func(s activity.Stats) int64 { return s.Batches })),
			prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "steward_activity_batch_failures_total",
				Help: "Group-commit transactions that failed."}, stats(func(s activity.Stats) int64 { return s.Failures })),
			prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "steward_activity_commit_seconds_total",
				Help: "Time spent committing group-commit transactions."}, func() float64 { return a.Activity.Stats().CommitTime.Seconds() }),
			prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "steward_activity_seen_keys",
				Help: "Unique-visitor keys of the live days held in memory."}, stats(func(s activity.Stats) int64 { return s.SeenKeys })),
		} {
			if err := a.Metrics.Register(c); err != nil {
				return fmt.Errorf("app: register activity metrics: %w", err)
			}
		}
	}
	a.Activity.Start(ctx)
	return nil
}

// demoSite is the site id of the demo page (examples/site).
const demoSite = "demo"

// withOwnOrigin adds Steward's own origin (and its loopback twin:
// 127.0.0.1 and localhost name one machine) to the allowed origins of
// site id, so the demo page Steward serves itself can send events
// whatever address it listens on; the example policies name port 8080.
func withOwnOrigin(sites []activity.Site, id, baseURL string) []activity.Site {
	u, err := url.Parse(baseURL)
	if err != nil || u.Host == "" {
		return sites
	}
	own := []string{strings.ToLower(u.Scheme + "://" + u.Host)}
	port := ""
	if p := u.Port(); p != "" {
		port = ":" + p
	}
	switch u.Hostname() {
	case "127.0.0.1":
		own = append(own, u.Scheme+"://localhost"+port)
	case "localhost":
		own = append(own, u.Scheme+"://127.0.0.1"+port)
	}
	out := slices.Clone(sites)
	for i := range out {
		if out[i].ID != id {
			continue
		}
		origins := slices.Clone(out[i].Origins)
		for _, o := range own {
			if !slices.Contains(origins, o) {
				origins = append(origins, o)
			}
		}
		out[i].Origins = origins
	}
	return out
}
