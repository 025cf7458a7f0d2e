package disclosure

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"time"

	"steward/internal/store"
)

// SmallCount is the smallest number of accounts the report shows as a
// band of its own width: fewer, and a count could point at someone (the
// one person a known investigation is about), so it is shown as "1-9".
const SmallCount = 10

// Report is the public transparency report (M13): legal requests counted
// by kind, jurisdiction and decision per half-year, from the register.
// It names no one: no subject, no authority, no reason.
type Report struct {
	Controller string   `json:"controller"`
	Generated  string   `json:"generated_at"`
	Periods    []Period `json:"periods"`
	Note       string   `json:"note"`
}

// Period is one half-year of the report.
type Period struct {
	Period string    `json:"period"` // "2026-H1"
	From   time.Time `json:"from"`
	To     time.Time `json:"to"`
	// Final periods have ended. Their figures are the counts as they
	// stood at To, stored for good at Published: the first time the report
	// was read, or a request of the half-year changed, after it ended.
	Final    bool   `json:"final"`
	Requests int    `json:"requests"`
	Accounts string `json:"accounts_affected"`
	Rows     []Row  `json:"rows"`
	// Published is when the ended half-year's figures were stored for
	// good; they are those of its end whatever the time.
	Published string `json:"published_at,omitempty"`
}

// Row counts the requests of one kind, jurisdiction and decision.
type Row struct {
	Kind         string `json:"kind"`
	Jurisdiction string `json:"jurisdiction"`
	Decision     string `json:"decision"`
	Requests     int    `json:"requests"`
	// Accounts is how many accounts the requests named (an account named
	// by two requests counts in each), as a band: see band.
	Accounts string `json:"accounts_affected"`
}

// band shows a count of accounts without pointing at anyone: 0, or the
// band of SmallCount it falls in ("1-9", "10-19", "20-29"...). Every
// account figure, each row's and the period's total, is banded the same
// way: were the total exact (13) beside a banded row ("1-9") and exact
// others (12), subtracting would give the banded one back (1); with every
// figure a band of width SmallCount, subtracting gives a range again. The
// same holds for the live half-year watched over time: a new request
// moves a figure by a band at most, its own count staying a range.
// Request counts stay exact: they count what authorities asked, not whom,
// and only bound an account figure from below (a request names one
// account at least), which pins it only when the requests alone fill its
// band: nine requests in "1-9" named one account each, which the request
// count had already said.
func band(n int) string {
	if n <= 0 {
		return "0"
	}
	if n < SmallCount {
		return fmt.Sprintf("1-%d", SmallCount-1)
	}
	lo := n - n%SmallCount
	return fmt.Sprintf("%d-%d", lo, lo+SmallCount-1)
}

// half returns the half-year holding t: its name, start and end.
func half(t time.Time) (string, time.Time, time.Time) {
	t = t.UTC()
	if t.Month() <= 6 {
		from := time.Date(t.Year(), 1, 1, 0, 0, 0, 0, time.UTC)
		return fmt.Sprintf("%d-H1", t.Year()), from, from.AddDate(0, 6, 0)
	}
	from := time.Date(t.Year(), 7, 1, 0, 0, 0, 0, time.UTC)
	return fmt.Sprintf("%d-H2", t.Year()), from, from.AddDate(0, 6, 0)
}

// Transparency returns the report: every half-year from the first
// request to the current one. An ended half-year is read as stored (and
// stored now if it was not yet: see freeze); the current one is counted
// live.
func (s *Service) Transparency(ctx context.Context) (Report, error) {
	now := s.d.Clock.Now().UTC()
	rep := Report{Controller: s.pol.Controller.Name, Generated: now.Format(time.RFC3339), Periods: []Period{},
		Note: fmt.Sprintf("Counted from our register of legal requests. Accounts affected are shown in bands of %d (0, 1-%d, %d-%d...), "+
			"totals too, so that no figure can be worked out from the others. "+
			"An ended half-year's figures are those at its end, and never change after.", SmallCount, SmallCount-1, SmallCount, 2*SmallCount-1)}
	var first sql.NullString
	if err := s.d.DB.QueryRowContext(ctx, `SELECT MIN(period) FROM legal_request_tally`).Scan(&first); err != nil {
		return Report{}, errorf("transparency: %w", err)
	}
	_, cur, _ := half(now)
	start := cur
	if from, ok := periodStart(first.String); first.Valid && ok && from.Before(cur) {
		start = from
	}
	for from := start; !from.After(cur); from = from.AddDate(0, 6, 0) {
		name, _, to := half(from)
		if to.After(now) {
			p, err := s.count(ctx, s.d.DB, name, from, to)
			if err != nil {
				return Report{}, err
			}
			rep.Periods = append(rep.Periods, p)
			continue
		}
		p, err := s.published(ctx, from, now)
		if err != nil {
			return Report{}, err
		}
		rep.Periods = append(rep.Periods, p)
	}
	// Newest first.
	sort.SliceStable(rep.Periods, func(i, j int) bool { return rep.Periods[i].From.After(rep.Periods[j].From) })
	return rep, nil
}

// published returns an ended half-year as stored, storing it first when
// it was not.
func (s *Service) published(ctx context.Context, from, now time.Time) (Period, error) {
	name, _, _ := half(from)
	if err := s.freeze(ctx, s.d.DB, from, now); err != nil {
		return Period{}, err
	}
	var raw string
	if err := s.d.DB.QueryRowContext(ctx, `SELECT report FROM transparency_periods WHERE period = $1`, name).Scan(&raw); err != nil {
		return Period{}, errorf("transparency: %w", err)
	}
	var p Period
	if err := json.Unmarshal([]byte(raw), &p); err != nil {
		return Period{}, errorf("transparency: stored %s: %w", name, err)
	}
	return p, nil
}

// freeze stores for good the figures of the half-year holding t once it
// has ended, unless they are stored already. It runs before anything
// changes a half-year's counts (tally, in the transaction that changes
// them) as well as when the report is read, so the first change to an
// ended half-year, or the first read, stores the counts as they stood at
// its end: nothing changed them in between. Two at once store the same
// figures; the first one stays.
func (s *Service) freeze(ctx context.Context, q store.Q, t, now time.Time) error {
	name, from, to := half(t)
	if to.After(now) {
		return nil
	}
	var one int
	err := q.QueryRowContext(ctx, `SELECT 1 FROM transparency_periods WHERE period = $1`, name).Scan(&one)
	if err == nil {
		return nil
	}
	if !errors.Is(err, sql.ErrNoRows) {
		return errorf("transparency: %w", err)
	}
	p, err := s.count(ctx, q, name, from, to)
	if err != nil {
		return err
	}
	p.Final, p.Published = true, now.Format(time.RFC3339)
	b, err := json.Marshal(p)
	if err != nil {
		return errorf("transparency: %w", err)
	}
	if _, err := q.ExecContext(ctx, `INSERT INTO transparency_periods (period, report, published_at) VALUES ($1, $2, $3)
		ON CONFLICT (period) DO NOTHING`, name, string(b), now); err != nil {
		return errorf("transparency: store %s: %w", name, err)
	}
	return nil
}

// periodStart reads a half-year's name ("2026-H1") back into its start.
func periodStart(name string) (time.Time, bool) {
	var y, h int
	if n, err := fmt.Sscanf(name, "%d-H%d", &y, &h); err != nil || n != 2 || h < 1 || h > 2 || y < 1970 || y > 9999 {
		return time.Time{}, false
	}
	return time.Date(y, time.Month(1+6*(h-1)), 1, 0, 0, 0, 0, time.UTC), true
}

// count reads a half-year's counts: kept with the register, in the
// transactions that record and decide each request, so the report costs
// one indexed read whatever the register's size.
func (s *Service) count(ctx context.Context, q store.Q, name string, from, to time.Time) (Period, error) {
	p := Period{Period: name, From: from, To: to, Rows: []Row{}}
	rows, err := q.QueryContext(ctx, `SELECT kind, jurisdiction, decision, requests, accounts FROM legal_request_tally
		WHERE period = $1 AND requests > 0 ORDER BY kind, jurisdiction, decision`, name)
	if err != nil {
		return Period{}, errorf("transparency: %w", err)
	}
	defer rows.Close()
	accounts := 0
	for rows.Next() {
		var r Row
		var n int
		if err := rows.Scan(&r.Kind, &r.Jurisdiction, &r.Decision, &r.Requests, &n); err != nil {
			return Period{}, errorf("transparency: %w", err)
		}
		r.Accounts = band(n)
		p.Requests += r.Requests
		accounts += n
		p.Rows = append(p.Rows, r)
	}
	if err := rows.Err(); err != nil {
		return Period{}, errorf("transparency: %w", err)
	}
	p.Accounts = band(accounts)
	return p, nil
}
