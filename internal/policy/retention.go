package policy

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"

	"steward/internal/clock"
)

// RetentionKind says what a retention rule counts from.
type RetentionKind uint8

const (
	// RetainPeriod keeps data for a period after it was collected.
	RetainPeriod RetentionKind = iota + 1
	// RetainAccountLifetime keeps data while the subject's account (or,
	// for people without one, their relationship with the site) lasts,
	// plus an optional grace period after it ends.
	RetainAccountLifetime
	// RetainArchive keeps data for archiving in the public interest (GDPR
	// Art. 89): it survives erasure requests, and the subject is told so.
	RetainArchive
)

func (k RetentionKind) String() string {
	switch k {
	case RetainPeriod:
		return "period"
	case RetainAccountLifetime:
		return "account-lifetime"
	case RetainArchive:
		return "archive"
	}
	return "unset"
}

// Period is a calendar length: years and months count as calendar units
// (legal periods do), days as days.
type Period struct {
	Years, Months, Days int
}

// IsZero reports whether the period is empty.
func (p Period) IsZero() bool { return p.Years == 0 && p.Months == 0 && p.Days == 0 }

// AddTo returns t plus the period; months follow clock.AddMonths, so 31
// January + 1 month is the end of February.
func (p Period) AddTo(t time.Time) time.Time {
	return clock.AddMonths(t, p.Years*12+p.Months).AddDate(0, 0, p.Days)
}

// SubtractFrom returns t minus the period.
func (p Period) SubtractFrom(t time.Time) time.Time {
	return clock.AddMonths(t, -(p.Years*12+p.Months)).AddDate(0, 0, -p.Days)
}

// approxDays orders periods by their mean length in days (a month is
// 365.2425/12 days), so 12 months equal a year and 13 months exceed it.
func (p Period) approxDays() float64 {
	return float64(p.Years*12+p.Months)*365.2425/12 + float64(p.Days)
}

func (p Period) String() string {
	var parts []string
	add := func(n int, unit string) {
		if n == 0 {
			return
		}
		if n == 1 {
			parts = append(parts, "1 "+unit)
		} else {
			parts = append(parts, strconv.Itoa(n)+" "+unit+"s")
		}
	}
	add(p.Years, "year")
	add(p.Months, "month")
	add(p.Days, "day")
	if len(parts) == 0 {
		return "0 days"
	}
	return strings.Join(parts, " ")
}

// ISO returns the period as an ISO 8601 duration (P1Y6M, P30D).
func (p Period) ISO() string {
	if p.IsZero() {
		return "P0D"
	}
	s := "P"
	if p.Years != 0 {
		s += strconv.Itoa(p.Years) + "Y"
	}
	if p.Months != 0 {
		s += strconv.Itoa(p.Months) + "M"
	}
	if p.Days != 0 {
		s += strconv.Itoa(p.Days) + "D"
	}
	return s
}

// Retention is how long a category is kept.
type Retention struct {
	Kind RetentionKind
	// Period is the length for RetainPeriod, and the grace period after
	// the account ends for RetainAccountLifetime.
	Period Period
	// Then is what stays of the category's aggregates once the period is
	// over (only after a period): ThenDelete (the zero value) deletes
	// them with the rows they were counted from, ThenMonthly keeps them
	// coarsened to the month with rare values merged, so none relates to
	// a person.
	Then Afterwards
}

// Afterwards is what a period rule keeps of a category's aggregates (the
// analytics rollups) once the period is over.
type Afterwards uint8

const (
	// ThenDelete deletes the aggregates with the rows.
	ThenDelete Afterwards = iota
	// ThenMonthly keeps anonymous monthly aggregates.
	ThenMonthly
)

// thenMonthly is how a rule spells ThenMonthly after its period.
const thenMonthly = "monthly aggregates"

// IsSet reports whether the rule was given.
func (r Retention) IsSet() bool { return r.Kind != 0 }

// String is the canonical spelling, which ParseRetention reads back.
func (r Retention) String() string {
	switch r.Kind {
	case RetainPeriod:
		if r.Then == ThenMonthly {
			return r.Period.String() + ", then " + thenMonthly
		}
		return r.Period.String()
	case RetainAccountLifetime:
		if r.Period.IsZero() {
			return "account-lifetime"
		}
		return "account-lifetime + " + r.Period.String()
	case RetainArchive:
		return "archive"
	}
	return ""
}

// Describe is the rule in words for the notice.
func (r Retention) Describe() string {
	switch r.Kind {
	case RetainPeriod:
		if r.Then == ThenMonthly {
			return r.Period.String() + " after it is collected, then deleted; only statistics totalled by month are kept, " +
				"in which any value seen by too few visitors is merged into \"other\", so they relate to no one"
		}
		return r.Period.String() + " after it is collected, then deleted"
	case RetainAccountLifetime:
		if r.Period.IsZero() {
			return "while your account exists; deleted when it is closed"
		}
		return "while your account exists, and " + r.Period.String() + " after it is closed; then deleted"
	case RetainArchive:
		return "kept permanently for archiving in the public interest (GDPR Art. 89), also after an erasure request"
	}
	return "not stated"
}

// Cutoff returns the instant before which data collected under a period
// rule has expired. ok is false for rules that do not expire by age.
func (r Retention) Cutoff(now time.Time) (cutoff time.Time, ok bool) {
	if r.Kind != RetainPeriod {
		return time.Time{}, false
	}
	return r.Period.SubtractFrom(now), true
}

// rank orders rules by how long they may keep data: a period is shorter
// than account lifetime (which has no fixed end), which is shorter than
// archive (forever).
func (r Retention) rank() (int, float64) {
	switch r.Kind {
	case RetainPeriod:
		return 1, r.Period.approxDays()
	case RetainAccountLifetime:
		return 2, r.Period.approxDays()
	case RetainArchive:
		return 3, 0
	}
	return 0, 0
}

// Longer reports whether r may keep data longer than o.
func (r Retention) Longer(o Retention) bool {
	rk, rd := r.rank()
	ok, od := o.rank()
	if rk != ok {
		return rk > ok
	}
	return rd > od
}

// Shorter returns the stricter of two rules (the one keeping data less
// long); an unset rule yields the other. Of two equally long periods, the
// one keeping no aggregates afterwards is the stricter.
func Shorter(a, b Retention) Retention {
	if !a.IsSet() {
		return b
	}
	if !b.IsSet() {
		return a
	}
	if a.Longer(b) || (!b.Longer(a) && a.Then > b.Then) {
		return b
	}
	return a
}

// MarshalJSON writes the rule as {text, kind, period}.
func (r Retention) MarshalJSON() ([]byte, error) {
	v := struct {
		Text   string `json:"text"`
		Kind   string `json:"kind"`
		Period string `json:"period,omitempty"`
		Then   string `json:"then,omitempty"`
	}{Text: r.String(), Kind: r.Kind.String()}
	if r.Then == ThenMonthly {
		v.Then = thenMonthly
	}
	if r.Kind != RetainArchive && !r.Period.IsZero() {
		v.Period = r.Period.ISO()
	}
	return json.Marshal(v)
}

// ParseRetention reads "13 months", "30 days", "7 years", "1 year 6
// months", "2 weeks", "account-lifetime", "account-lifetime + 30 days" or
// "archive"; a period may end with ", then monthly aggregates" ("13
// months, then monthly aggregates").
func ParseRetention(s string) (Retention, error) {
	t := strings.ToLower(strings.TrimSpace(s))
	if head, after, ok := strings.Cut(t, "then"); ok {
		after = strings.Join(strings.Fields(after), " ")
		if after != thenMonthly {
			return Retention{}, fmt.Errorf("%q: after \"then\" only %q may follow (the aggregates kept once the period is over)", s, thenMonthly)
		}
		r, err := ParseRetention(strings.TrimSuffix(strings.TrimSpace(head), ","))
		if err != nil {
			return Retention{}, err
		}
		if r.Kind != RetainPeriod {
			return Retention{}, fmt.Errorf("%q: \"then %s\" follows only a period such as \"13 months\"", s, thenMonthly)
		}
		r.Then = ThenMonthly
		return r, nil
	}
	switch {
	case t == "archive":
		return Retention{Kind: RetainArchive}, nil
	case t == "account-lifetime":
		return Retention{Kind: RetainAccountLifetime}, nil
	case strings.HasPrefix(t, "account-lifetime"):
		rest := strings.TrimSpace(strings.TrimPrefix(t, "account-lifetime"))
		if !strings.HasPrefix(rest, "+") {
			return Retention{}, fmt.Errorf("%q: after account-lifetime only \"+ PERIOD\" may follow", s)
		}
		p, err := ParsePeriod(strings.TrimSpace(rest[1:]))
		if err != nil {
			return Retention{}, err
		}
		return Retention{Kind: RetainAccountLifetime, Period: p}, nil
	}
	p, err := ParsePeriod(t)
	if err != nil {
		return Retention{}, err
	}
	if p.IsZero() {
		return Retention{}, fmt.Errorf("%q: a retention period must be longer than zero", s)
	}
	return Retention{Kind: RetainPeriod, Period: p}, nil
}

// ParsePeriod reads one or more "N unit" pairs (day, week, month, year,
// singular or plural), optionally joined by commas or "and".
func ParsePeriod(s string) (Period, error) {
	words := strings.Fields(strings.NewReplacer(",", " ").Replace(strings.ToLower(s)))
	var p Period
	if len(words) == 0 {
		return p, fmt.Errorf("empty period: write for example \"30 days\" or \"13 months\"")
	}
	seen := map[string]bool{}
	for i := 0; i < len(words); {
		if words[i] == "and" {
			i++
			continue
		}
		n, err := strconv.Atoi(words[i])
		if err != nil || n < 0 || n > 1000 {
			return Period{}, fmt.Errorf("%q: expected a number of days, weeks, months or years, found %q", s, words[i])
		}
		if i+1 >= len(words) {
			return Period{}, fmt.Errorf("%q: the number %d needs a unit (days, weeks, months, years)", s, n)
		}
		unit := strings.TrimSuffix(words[i+1], "s")
		if seen[unit] {
			return Period{}, fmt.Errorf("%q: unit %s given twice", s, unit)
		}
		seen[unit] = true
		switch unit {
		case "day":
			p.Days += n
		case "week":
			p.Days += 7 * n
		case "month":
			p.Months += n
		case "year":
			p.Years += n
		default:
			return Period{}, fmt.Errorf("%q: unknown unit %q (use days, weeks, months or years)", s, words[i+1])
		}
		i += 2
	}
	return p, nil
}
