// Package retention owns the sweep that deletes what the policy no longer
// allows to be kept: rows of every registered table past their category's
// retention (dated by the column the registry names), the rows kept after
// an account's erasure once their grace period ends, and subjects whose
// relationship with the site ended with nothing left but their address.
// It honours legal holds (kept in the subject-state store, placed through
// Place) and archive categories, records every sweep's counts per category
// in the audit log (never the data), and destroys a subject's category key
// when the sweep removed the last of that category. The policy's retention
// rule is the one source: the notice, the access report and the sweep all
// read Rule.
package retention

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"steward/internal/audit"
	"steward/internal/clock"
	"steward/internal/door"
	"steward/internal/jobs"
	"steward/internal/policy"
	"steward/internal/registry"
	"steward/internal/rights"
	"steward/internal/store"
	"steward/internal/subject"
)

// JobSweep is the kind of the periodic sweep on the leased job runner.
const JobSweep = "retention.sweep"

// Defaults of Deps.
const (
	defaultBatch = 1000
	defaultPause = 20 * time.Millisecond
	// orphanGrace is how long a person known only by an address keeps it
	// when nothing else of theirs is left (the confirmation they were
	// mailed was never used): longer than any confirmation link lasts.
	orphanGrace = 30 * 24 * time.Hour
	// subjectBatch bounds how many expired subjects one pass erases.
	subjectBatch = 200
)

// Deps are what the sweep works with.
type Deps struct {
	DB       *store.DB
	Clock    clock.Clock
	Log      *slog.Logger
	Policy   *policy.Policy
	Registry *registry.Registry
	Subjects *subject.Store
	Door     *door.Door
	Audit    *audit.Log
	Rights   *rights.Service
	// Rollups age out the aggregates counted from registered tables.
	Rollups []Rollup
	// Metrics, when set, receives the sweep's counters.
	Metrics prometheus.Registerer
	// Batch bounds the rows one transaction removes, Pause is the rest
	// between two: collection and sign-in get the writer in between.
	// Zero takes the defaults; a negative Pause rests not at all.
	Batch int
	Pause time.Duration
}

// Service runs sweeps and keeps legal holds.
type Service struct {
	d       Deps
	removed *prometheus.CounterVec
	seconds prometheus.Histogram
	mu      sync.Mutex   // one sweep at a time in this process
	worked  atomic.Int64 // when the sweep's current work began (UnixNano; pause)
	histMu  sync.Mutex
	parsed  map[int]*policy.Policy // published versions, by number
}

// New returns the sweep service.
func New(d Deps) (*Service, error) {
	switch {
	case d.DB == nil || d.Clock == nil || d.Policy == nil || d.Registry == nil || d.Subjects == nil || d.Door == nil || d.Audit == nil || d.Rights == nil:
		return nil, errors.New("retention: DB, Clock, Policy, Registry, Subjects, Door, Audit and Rights are required")
	}
	if d.Log == nil {
		d.Log = slog.New(slog.DiscardHandler)
	}
	if d.Batch <= 0 {
		d.Batch = defaultBatch
	}
	switch {
	case d.Pause == 0:
		d.Pause = defaultPause
	case d.Pause < 0:
		d.Pause = 0 // tests
	}
	s := &Service{d: d,
		removed: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "steward_retention_rows_removed_total",
			Help: "Rows the retention sweep removed, by policy category and table."}, []string{"category", "table"}),
		seconds: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "steward_retention_sweep_duration_seconds",
			Help: "How long each retention sweep took.", Buckets: prometheus.ExponentialBuckets(0.01, 4, 10)}),
	}
	if d.Metrics != nil {
		if err := d.Metrics.Register(s.removed); err != nil {
			return nil, fmt.Errorf("retention: metrics: %w", err)
		}
		if err := d.Metrics.Register(s.seconds); err != nil {
			return nil, fmt.Errorf("retention: metrics: %w", err)
		}
	}
	// Loading the policy refuses these (app.LoadPolicy); a policy given
	// some other way is swept as far as it can be, and the log says what
	// cannot be.
	if err := Check(d.Policy, d.Registry); err != nil {
		d.Log.Error("retention: the sweep cannot apply every retention of the policy", "problems", err.Error())
	}
	return s, nil
}

// RegisterJobs makes the sweep a periodic job of the leased runner, so
// several processes never run it at once.
func (s *Service) RegisterJobs(r *jobs.Runner, every time.Duration) {
	r.Handle(JobSweep, func(ctx context.Context, _ jobs.Job) error {
		rep, err := s.Sweep(ctx)
		if err == nil && rep.Removed() > 0 {
			s.d.Log.Info("retention: swept", "rows", rep.Removed(), "subjects", rep.SubjectsErased, "took", rep.Took.String())
		}
		return err
	})
	r.Every(JobSweep, every)
}

// Rule is the retention the policy gives a category: what the notice
// shows, what the access report states and what the sweep applies.
func Rule(p *policy.Policy, category string) (policy.Retention, bool) {
	return p.Retention(category)
}

// Line is what a sweep does, or would do, to one table for one category.
type Line struct {
	Category string `json:"category"`
	Table    string `json:"table"`
	// Rule is the policy's retention in words, Event what it counts from.
	Rule  string `json:"rule"`
	Event string `json:"event"`
	// Cutoff: rows dated before it are past their time.
	Cutoff *time.Time `json:"cutoff,omitempty"`
	// Due counts the rows past their time that the sweep removes (a dry
	// run) or removed; Oldest is the oldest of them.
	Due    int64      `json:"due"`
	Oldest *time.Time `json:"oldest,omitempty"`
	// Held counts rows past their time kept by a legal hold; Kept says why
	// a whole line is kept (archive, a hold on the category).
	Held int64  `json:"held"`
	Kept string `json:"kept,omitempty"`
	// Added counts the aggregate rows that rows removed were added to
	// (rollups coarsened to months).
	Added int64 `json:"added,omitempty"`
}

// Report is a sweep or its dry run.
type Report struct {
	At     time.Time `json:"at"`
	DryRun bool      `json:"dry_run"`
	Lines  []Line    `json:"lines"`
	// SubjectsDue counts people known only by an address with nothing
	// else left past the grace; SubjectsErased those erased, SubjectsHeld
	// those a hold kept.
	SubjectsDue    int64         `json:"subjects_due"`
	SubjectsErased int64         `json:"subjects_erased"`
	SubjectsHeld   int64         `json:"subjects_held"`
	KeysDestroyed  int64         `json:"keys_destroyed"`
	Took           time.Duration `json:"took_ns"`
}

// Removed is the number of rows the sweep removed (or would remove).
func (r Report) Removed() int64 {
	var n int64
	for _, l := range r.Lines {
		n += l.Due
	}
	return n
}

// ByCategory sums the rows removed per category.
func (r Report) ByCategory() map[string]int64 {
	out := map[string]int64{}
	for _, l := range r.Lines {
		if strings.HasPrefix(l.Event, eventDayEnded) {
			continue // aggregates: counted apart (rollups_removed)
		}
		out[l.Category] += l.Due
	}
	return out
}

// target is one table the sweep looks at for one category.
type target struct {
	t      registry.Table
	cat    string
	rule   policy.Retention
	event  string // "collected" (dated column) or "account-closed"
	dated  string // the column dating rows (collected)
	with   []registry.Table
	cats   []string // every category the rows hold, for holds
	sealed bool     // the rows hold values sealed under the category key
	spans  []span   // the rule for rows collected under each policy version
}

// targets works out, from the registry and the policy, what the sweep
// looks at.
func (s *Service) targets() []target {
	p := s.d.Policy
	var out []target
	for _, t := range s.d.Registry.Tables() {
		cats := t.Categories(p.CategoryOfField)
		switch {
		case t.Dated.Column != "":
			cat := datingCategory(p, t)
			if cat == "" {
				continue
			}
			rule, _ := Rule(p, cat)
			tg := target{t: t, cat: cat, rule: rule, event: "collected", dated: t.Dated.Column, cats: append(cats, cat)}
			for _, w := range s.d.Registry.Tables() {
				if w.Dated.With == t.Name {
					tg.with = append(tg.with, w)
				}
			}
			for _, c := range t.Columns {
				if c.Sensitive && c.CategoryIn(p.CategoryOfField) == cat {
					tg.sealed = true
				}
			}
			out = append(out, tg)
		case t.KeptBecause != "" && t.Personal():
			// Rows that survive the account's erasure go when the grace
			// the policy gives after the account ends is over.
			for _, cat := range cats {
				rule, _ := Rule(p, cat)
				if rule.Kind == policy.RetainAccountLifetime && !rule.Period.IsZero() {
					out = append(out, target{t: t, cat: cat, rule: rule, event: "account-closed", cats: cats})
				}
			}
		}
	}
	return out
}

// datingCategory is the category whose retention a dated table's rows
// follow: its declared field's, or the longest of its categories.
func datingCategory(p *policy.Policy, t registry.Table) string {
	if t.Dated.Field != "" {
		return p.CategoryOfField(t.Dated.Field)
	}
	best := ""
	var bestRule policy.Retention
	for _, c := range t.Categories(p.CategoryOfField) {
		r, _ := Rule(p, c)
		if best == "" || r.Longer(bestRule) {
			best, bestRule = c, r
		}
	}
	return best
}

// Check reports every category with a retention period that the sweep
// could not apply: a registered table holds it but names no column that
// dates its rows. The problem points at the policy's retention line.
func Check(p *policy.Policy, reg *registry.Registry) error {
	var probs []policy.Problem
	seen := map[string]bool{}
	for _, t := range reg.Tables() {
		if t.Dated.Column != "" {
			// A dated row goes at its dating category's time: a category
			// it holds that the policy keeps for less would outstay it.
			dc := datingCategory(p, t)
			dr, _ := Rule(p, dc)
			for _, cat := range t.Categories(p.CategoryOfField) {
				if r, _ := Rule(p, cat); dr.Longer(r) && !seen[cat+"/"+t.Name] {
					seen[cat+"/"+t.Name] = true
					probs = append(probs, p.ProblemAt("retention."+cat,
						fmt.Sprintf("category %s is kept for %s, but table %s holds it in rows kept for %s (the retention of %s)", cat, r, t.Name, dr, dc),
						fmt.Sprintf("give %s the same retention as %s, or a longer one", cat, dc)))
				}
			}
		}
		if !t.Personal() || t.Dated.IsSet() || t.KeptBecause != "" {
			continue
		}
		for _, cat := range t.Categories(p.CategoryOfField) {
			rule, _ := Rule(p, cat)
			if rule.Kind != policy.RetainPeriod || seen[cat+"/"+t.Name] {
				continue
			}
			seen[cat+"/"+t.Name] = true
			probs = append(probs, p.ProblemAt("retention."+cat,
				fmt.Sprintf("category %s is kept for %s, but table %s (owner %s) holds it with no column that dates its rows, so no sweep can apply it", cat, rule, t.Name, t.Owner),
				fmt.Sprintf("keep %s for account-lifetime (or archive), or have package %s declare registry.Dating on %s", cat, t.Owner, t.Name)))
		}
	}
	// Monthly aggregates can only be kept of a category some aggregate
	// table is counted from: on any other the clause would promise what
	// nothing does.
	aggregated := map[string]bool{}
	for _, t := range reg.Tables() {
		if t.CountedFrom == "" {
			continue
		}
		for _, src := range reg.Tables() {
			if src.Name == t.CountedFrom && src.Dated.Column != "" {
				aggregated[datingCategory(p, src)] = true
			}
		}
	}
	kept := make([]string, 0, len(aggregated))
	for c := range aggregated {
		kept = append(kept, c)
	}
	sort.Strings(kept)
	for _, c := range p.Categories() {
		cat := c.ID
		if r, _ := Rule(p, cat); r.Then == policy.ThenMonthly && !aggregated[cat] {
			probs = append(probs, p.ProblemAt("retention."+cat,
				fmt.Sprintf("category %s keeps monthly aggregates, but no aggregate table is counted from it", cat),
				fmt.Sprintf("end %s's rule at its period; aggregates are counted from %s only", cat, strings.Join(kept, ", "))))
		}
	}
	if len(probs) == 0 {
		return nil
	}
	sort.SliceStable(probs, func(i, j int) bool { return probs[i].Line < probs[j].Line })
	return &policy.Problems{List: probs}
}

// detailKey is a category as an audit detail key.
func detailKey(prefix, cat string) string {
	return prefix + strings.ReplaceAll(cat, "-", "_")
}

// record writes the sweep's counts per category in the audit log.
func (s *Service) record(ctx context.Context, rep Report, stopped bool) error {
	detail := map[string]string{
		"stopped":         strconv.FormatBool(stopped),
		"subjects_erased": strconv.FormatInt(rep.SubjectsErased, 10),
		"subjects_held":   strconv.FormatInt(rep.SubjectsHeld, 10),
		"keys_destroyed":  strconv.FormatInt(rep.KeysDestroyed, 10),
		"took_ms":         strconv.FormatInt(rep.Took.Milliseconds(), 10),
	}
	held := map[string]int64{}
	for _, l := range rep.Lines {
		held[l.Category] += l.Held
	}
	var rollRemoved, rollAdded int64
	for _, l := range rep.Lines {
		if strings.HasPrefix(l.Event, eventDayEnded) {
			rollRemoved += l.Due
			rollAdded += l.Added
		}
	}
	detail["rollups_removed"] = strconv.FormatInt(rollRemoved, 10)
	detail["rollups_added"] = strconv.FormatInt(rollAdded, 10)
	for cat, n := range rep.ByCategory() {
		if len(detail) < 31 {
			detail[detailKey("removed.", cat)] = strconv.FormatInt(n, 10)
		}
		if held[cat] > 0 && len(detail) < 31 {
			detail[detailKey("held.", cat)] = strconv.FormatInt(held[cat], 10)
		}
	}
	return s.d.Audit.Record(ctx, s.d.DB, audit.Event{Actor: "system", Action: "retention.swept", Detail: detail})
}
