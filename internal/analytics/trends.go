package analytics

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"fmt"
	"math"
	"math/rand/v2"
	"sort"
	"time"

	"steward/internal/activity"
	"steward/internal/fault"
	"steward/internal/policy"
)

// Anonymised trends: what partners and the public may see (JMIR promise
// J8, Mixi promise M14). The unit is the visitor-day — one visitor on one
// day; visitors of different days cannot be linked, by design, so a
// visitor-day is the most one can say about a person — and a group
// (a page, a country, a day) is published only with at least k of them.
//
// With dp_epsilon > 0 every published count also carries noise from the
// two-sided geometric mechanism (noise.go) with that ε per count. The k
// rule is applied to the true count first (no group under k is ever
// published, whatever the noise), then to the noisy one (so a published
// figure is never below k either). Free-text search terms and custom event
// names are never part of trends.
//
// What the guarantee covers, stated in every answer: each count is
// ε-differentially private with respect to one visitor-day (sensitivity
// 1: a visitor-day adds at most one to a group's count). A visitor-day
// that appears in m published counts (several pages, plus its day and its
// country) is protected with m·ε by sequential composition. Which groups
// are published depends on the true counts through the threshold, so the
// set of groups shown is protected by k-anonymity, not by ε.

// TrendsConfig comes from the policy's analytics section.
type TrendsConfig struct {
	// Enabled is analytics.public_trends.
	Enabled bool
	// K is the minimum visitor-days of a published group (default 10).
	K int
	// Epsilon is the DP parameter per published count; 0 adds no noise.
	Epsilon float64
	// Noise is the random source. nil (production) draws from ChaCha8
	// keyed by a random secret and the published group, so asking the same
	// question again returns the same figure and averaging repeated answers
	// learns nothing. Tests inject a seeded source.
	Noise Source
	// Limit bounds the groups of each section (default 50).
	Limit int
}

func (t TrendsConfig) validate() (TrendsConfig, error) {
	if t.K == 0 {
		t.K = 10
	}
	if t.K < 2 {
		if t.Enabled {
			return t, fmt.Errorf("analytics: k-anonymity must be at least 2 to publish trends, not %d", t.K)
		}
		t.K = 2
	}
	if t.Epsilon != 0 && (t.Epsilon < minEpsilon || t.Epsilon > maxEpsilon || math.IsNaN(t.Epsilon)) {
		return t, fmt.Errorf("analytics: dp_epsilon must be 0 (no noise) or between %g and %g", float64(minEpsilon), float64(maxEpsilon))
	}
	if t.Limit <= 0 {
		t.Limit = 50
	}
	return t, nil
}

// TrendsFromPolicy reads the policy's analytics section: public_trends,
// k_anonymity and dp_epsilon.
func TrendsFromPolicy(p *policy.Policy) TrendsConfig {
	return TrendsConfig{Enabled: p.Analytics.PublicTrends, K: p.Analytics.KAnonymity, Epsilon: p.Analytics.DPEpsilon}
}

// Privacy states the protection of a trends answer.
type Privacy struct {
	Unit string `json:"unit"`
	K    int    `json:"k"`
	// Epsilon is the DP budget per published count; 0 means no noise.
	Epsilon     float64 `json:"epsilon_per_count"`
	Mechanism   string  `json:"mechanism"`
	Sensitivity int     `json:"sensitivity"`
	Statement   string  `json:"statement"`
}

// TrendRow is one published group.
type TrendRow struct {
	Value       string `json:"value"`
	VisitorDays int64  `json:"visitor_days"`
}

// TrendDay is one published day.
type TrendDay struct {
	Day         string `json:"day"`
	VisitorDays int64  `json:"visitor_days"`
}

// Trends is the anonymised report.
type Trends struct {
	Site      string     `json:"site"`
	From      string     `json:"from"`
	To        string     `json:"to"`
	TimeZone  string     `json:"time_zone"`
	Privacy   Privacy    `json:"privacy"`
	Days      []TrendDay `json:"days"`
	Pages     []TrendRow `json:"pages"`
	Referrers []TrendRow `json:"referrers"`
	Countries []TrendRow `json:"countries"`
	Browsers  []TrendRow `json:"browsers"`
	Systems   []TrendRow `json:"systems"`
	// Suppressed counts the groups left out for having fewer than k
	// visitor-days.
	Suppressed int `json:"suppressed_groups"`
}

// TrendsEnabled reports whether the policy offers public trends.
func (s *Service) TrendsEnabled() bool { return s.trends.Enabled }

// Trends returns the anonymised report of a site and range. It is
// fault.NotFound when the policy does not offer trends.
func (s *Service) Trends(ctx context.Context, q Query) (*Trends, error) {
	if !s.trends.Enabled {
		return nil, fault.New(fault.NotFound, "this site's privacy policy does not publish trends")
	}
	q.Limit, q.Interval = 0, ""
	sp, err := s.resolveTrends(q)
	if err != nil {
		return nil, err
	}
	t := &Trends{Site: sp.site.ID, From: sp.fromDay(), To: sp.toDay(), TimeZone: sp.site.Location.String(), Privacy: s.privacy()}
	days, err := s.daily(ctx, sp)
	if err != nil {
		return nil, err
	}
	t.Days = []TrendDay{}
	for _, d := range days {
		if d.Visitors == 0 {
			continue // nothing to publish or to suppress
		}
		if v, ok := s.publish(d.Visitors, t.key("days", d.Start.Format(time.DateOnly))); ok {
			t.Days = append(t.Days, TrendDay{Day: d.Start.Format(time.DateOnly), VisitorDays: v})
		} else {
			t.Suppressed++
		}
	}
	for _, sec := range []struct {
		dim string
		out *[]TrendRow
	}{
		{activity.DimPage, &t.Pages}, {activity.DimReferrer, &t.Referrers}, {activity.DimCountry, &t.Countries},
		{activity.DimBrowser, &t.Browsers}, {activity.DimOS, &t.Systems},
	} {
		rows, suppressed, err := s.trendSection(ctx, sp, sec.dim, t)
		if err != nil {
			return nil, err
		}
		*sec.out = rows
		t.Suppressed += suppressed
	}
	return t, nil
}

func (s *Service) privacy() Privacy {
	p := Privacy{Unit: "visitor-days", K: s.trends.K, Epsilon: s.trends.Epsilon, Sensitivity: 1, Mechanism: "none"}
	p.Statement = fmt.Sprintf("Groups with fewer than %d visitor-days are not published. Visitors cannot be linked across days.", s.trends.K)
	if s.trends.Epsilon > 0 {
		p.Mechanism = "two-sided geometric (discrete Laplace)"
		p.Statement += fmt.Sprintf(" Each published count carries discrete Laplace noise and is %g-differentially private for one visitor-day; a visitor-day counted in m published figures is protected with m×%g.", s.trends.Epsilon, s.trends.Epsilon)
	}
	return p
}

// publish applies the k rule and the noise to one true count; key names
// the published figure (site, range, section, group).
func (s *Service) publish(count int64, key string) (int64, bool) {
	k := int64(s.trends.K)
	if count < k {
		return 0, false
	}
	if s.trends.Epsilon > 0 {
		count += DiscreteLaplace(s.noiseFor(key), s.trends.Epsilon)
		if count < k {
			return 0, false
		}
	}
	return count, true
}

// noiseFor returns the random source of one published figure: the
// injected one in tests, else ChaCha8 seeded with HMAC-SHA-256(secret,
// key), a cryptographically strong stream that is the same for the same
// figure. The secret is random per process, so a restart draws new noise
// for the same figure; trends cover complete days only, whose true counts
// no longer change, so consistent noise hides them for good.
func (s *Service) noiseFor(key string) Source {
	if s.trends.Noise != nil {
		return s.trends.Noise
	}
	m := hmac.New(sha256.New, s.secret[:])
	m.Write([]byte(key))
	var seed [32]byte
	m.Sum(seed[:0])
	return rand.NewChaCha8(seed)
}

func (s *Service) trendSection(ctx context.Context, sp span, dim string, t *Trends) ([]TrendRow, int, error) {
	from, args, err := s.pieces(ctx, sp, dim)
	if err != nil {
		return nil, 0, err
	}
	rows, err := s.db.QueryContext(ctx, `SELECT value, SUM(u) FROM `+from+` WHERE value <> '' GROUP BY value`, args...)
	if err != nil {
		return nil, 0, fmt.Errorf("analytics: trends %s: %w", dim, err)
	}
	defer rows.Close()
	out := []TrendRow{}
	suppressed := 0
	for rows.Next() {
		var r TrendRow
		var u int64
		if err := rows.Scan(&r.Value, &u); err != nil {
			return nil, 0, fmt.Errorf("analytics: trends %s: %w", dim, err)
		}
		v, ok := s.publish(u, t.key(dim, r.Value))
		if !ok {
			suppressed++
			continue
		}
		r.VisitorDays = v
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		return nil, 0, err
	}
	// Order by the published (noisy) figure, so the order itself reveals
	// nothing the figures do not.
	sort.Slice(out, func(i, j int) bool {
		if out[i].VisitorDays != out[j].VisitorDays {
			return out[i].VisitorDays > out[j].VisitorDays
		}
		return out[i].Value < out[j].Value
	})
	if len(out) > s.trends.Limit {
		out = out[:s.trends.Limit]
	}
	return out, suppressed, nil
}

// key names one published figure for the noise.
func (t *Trends) key(section, value string) string {
	return t.Site + "\x00" + t.From + "\x00" + t.To + "\x00" + section + "\x00" + value
}

// resolveTrends is resolve for trends: complete days only. A day still
// under way changes from one request to the next, and the difference of
// two answers could single out one visitor's arrival; yesterday is the
// default end.
func (s *Service) resolveTrends(q Query) (span, error) {
	sp, err := s.resolve(Query{Site: q.Site})
	if err != nil {
		return sp, err
	}
	loc := sp.site.Location
	now := s.clock.Now().In(loc)
	yesterday := time.Date(now.Year(), now.Month(), now.Day()-1, 0, 0, 0, 0, loc)
	if q.To == "" {
		q.To = yesterday.Format(time.DateOnly)
	}
	if q.From == "" {
		q.From = yesterday.AddDate(0, 0, -(defaultDays - 1)).Format(time.DateOnly)
	}
	sp, err = s.resolve(q)
	if err != nil {
		return sp, err
	}
	if sp.to.After(yesterday) {
		return sp, fault.FieldError("to", "trends cover complete days only: to must be %s or earlier", yesterday.Format(time.DateOnly))
	}
	return sp, nil
}
