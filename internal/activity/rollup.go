package activity

import (
	"cmp"
	"net/url"
	"slices"
	"sort"
	"strings"
	"time"
)

// Rollups. Committed events add to two tables, aggregated in memory first
// (about a second's worth, see writer.go) so each row is upserted once:
//
//   - activity_daily (site, dim, day, value): views, visitors and time
//     spent per site-local day and dimension (the Dim constants);
//   - activity_hourly (site, hour): the site's views and visitors per
//     site-local hour, for time series.
//
// Visitors are exact unique counts per day. A seen-key — a 64-bit hash of
// (site, day, visitor hash, dimension, value) — marks a visitor already
// counted for a value that day; a visitor counts once, in the hour of its
// first event there. Summed over days, visitors are visitor-days: the unit
// the anonymised trends suppress small groups by (visitors of different
// days cannot be linked, by design). Country, region, city, browser,
// system and screen class belong to the visit, not the page (the visitor
// hash covers IP and user agent), so they share the visitor's daily key
// and are credited with its first page view of the day.
//
// Where the set of seen-keys lives depends on the engine:
//
//   - SQLite has one writer process. The set is kept in memory and is
//     authoritative; at start it is rebuilt from the raw events of the days
//     still live, which are committed in the same transactions as the
//     rollups, so a crash loses nothing. (Writing the keys to a table cost
//     a random B-tree page per key and made batches ten times slower.)
//   - PostgreSQL may have several processes. Keys are inserted into
//     activity_seen with ON CONFLICT DO NOTHING RETURNING, in the
//     transaction that writes the rollups, and the keys returned are the
//     new ones; the memory set is then only a cache that spares the insert
//     for repeats.
//
// Either way a day's keys are dropped with the day's salt.
//
// Time zones: a site has one time zone; days are its local days and hours
// its local hours, stored as the UTC instant the local hour starts. A
// +05:30 site's hours start at :30 UTC and its day at 18:30 UTC, so its
// reports are exact without 15- or 30-minute buckets. A site whose time
// zone changes keeps its earlier buckets in the old zone.

// Dimensions of the daily rollup.
const (
	DimTotal    = "total" // value "": the site's totals
	DimPage     = "page"
	DimReferrer = "referrer" // the referring host
	DimSearch   = "search"
	DimCampaign = "campaign" // utm_campaign
	DimCountry  = "country"
	DimRegion   = "region" // "GB/England"
	DimCity     = "city"   // "GB/London"
	DimBrowser  = "browser"
	DimOS       = "os"
	DimScreen   = "screen"
	DimOutbound = "outbound"
	DimDownload = "download"
	DimEvent    = "event"
)

type dailyKey struct{ site, dim, day, value string }

type dailyRow struct {
	site, dim, day, value                  string
	views, visitors, durationMS, durations int64
}

type hourKey struct {
	site string
	hour int64 // unix seconds
}

type hourlyRow struct {
	site            string
	hour            time.Time
	views, visitors int64
}

type seenCandidate struct {
	site, day string
	k         int64
}

// credit is what a seen-key adds when it turns out to be new: a visitor on
// each of its daily rows, and on the hour when it is the day's first.
type credit struct {
	k      int64
	daily  []dailyKey
	hourly *hourKey
}

// rollup is one batch's aggregation.
type rollup struct {
	daily      map[dailyKey]*dailyRow
	hourly     map[hourKey]*hourlyRow
	candidates []seenCandidate // keys not known to be seen, sorted
	credits    []credit
	keys       []dayKeys // every key of the batch, to remember after commit
}

type dayKeys struct {
	day dayID
	k   int64
}

// dayID names a site-day in the seen set.
type dayID struct{ site, day string }

// contribution is one (dimension, value) an event counts in. visit rows
// are credited with the visitor's daily key.
type contribution struct {
	dim, value string
	visit      bool
}

// contributions lists what an event counts in, in a fixed order: the
// visit's own rows first.
func contributions(e *Event, out []contribution) []contribution {
	switch e.Type {
	case TypePageview:
		out = append(out, contribution{DimTotal, "", true})
		for _, c := range [...]contribution{
			{DimCountry, e.Country, true}, {DimRegion, e.Country + "/" + e.Region, true}, {DimCity, e.Country + "/" + e.City, true},
			{DimBrowser, e.Browser, true}, {DimOS, e.OS, true}, {DimScreen, e.Screen, true},
		} {
			switch {
			case c.dim == DimRegion && e.Region == "", c.dim == DimCity && e.City == "", c.value == "":
				continue
			}
			out = append(out, c)
		}
		out = append(out, contribution{DimPage, e.Page, false})
		if e.Referrer != "" {
			out = append(out, contribution{DimReferrer, referrerHost(e.Referrer), false})
		}
		if e.Campaign != "" {
			out = append(out, contribution{DimCampaign, e.Campaign, false})
		}
		if e.Search != "" {
			out = append(out, contribution{DimSearch, e.Search, false})
		}
	case TypeSearch:
		out = append(out, contribution{DimSearch, e.Search, false})
	case TypeOutbound:
		out = append(out, contribution{DimOutbound, e.Link, false})
	case TypeDownload:
		out = append(out, contribution{DimDownload, e.Asset, false})
	case TypeEvent:
		out = append(out, contribution{DimEvent, e.Name, false})
	}
	return out
}

// aggregate sums a batch in memory. seen answers whether a key was already
// counted (authoritatively on SQLite, as a cache on PostgreSQL).
func aggregate(evs []Event, seen *seenSet) *rollup {
	return aggregateBatches([][]Event{evs}, seen)
}

// aggregateBatches is aggregate over several batches' events at once,
// without first copying them into one slice.
func aggregateBatches(batches [][]Event, seen *seenSet) *rollup {
	r := &rollup{daily: map[dailyKey]*dailyRow{}, hourly: map[hourKey]*hourlyRow{}}
	inBatch := map[int64]bool{}
	var cs []contribution
	for _, evs := range batches {
		cs = r.add(evs, seen, inBatch, cs)
	}
	return r
}

// add aggregates evs into r; inBatch holds the seen-keys r already has,
// cs is scratch space, returned for the next call.
func (r *rollup) add(evs []Event, seen *seenSet, inBatch map[int64]bool, cs []contribution) []contribution {
	for i := range evs {
		e := &evs[i]
		if e.Type == TypeEngagement {
			for _, dk := range [...]dailyKey{{e.Site, DimPage, e.Day, e.Page}, {e.Site, DimTotal, e.Day, ""}} {
				row := r.row(dk)
				row.durationMS += e.DurationMS
				row.durations++
			}
			continue
		}
		cs = contributions(e, cs[:0])
		visit := -1 // the credit of the visitor's daily key, when new
		for _, c := range cs {
			dk := dailyKey{e.Site, c.dim, e.Day, c.value}
			r.row(dk).views++
			if c.dim == DimTotal {
				hk := hourKey{e.Site, e.Hour.Unix()}
				hr := r.hourly[hk]
				if hr == nil {
					hr = &hourlyRow{site: e.Site, hour: e.Hour}
					r.hourly[hk] = hr
				}
				hr.views++
			}
			if c.visit && c.dim != DimTotal {
				// Credited with the visit's key (the total, first in cs).
				if visit >= 0 {
					r.credits[visit].daily = append(r.credits[visit].daily, dk)
				}
				continue
			}
			k := seenKey(e.Site, e.Day, e.Visitor, c.dim, c.value)
			if inBatch[k] {
				continue
			}
			inBatch[k] = true
			id := dayID{e.Site, e.Day}
			r.keys = append(r.keys, dayKeys{id, k})
			if seen.has(id, k) {
				continue
			}
			r.candidates = append(r.candidates, seenCandidate{e.Site, e.Day, k})
			cr := credit{k: k, daily: []dailyKey{dk}}
			if c.dim == DimTotal {
				hk := hourKey{e.Site, e.Hour.Unix()}
				cr.hourly = &hk
			}
			r.credits = append(r.credits, cr)
			if c.dim == DimTotal {
				visit = len(r.credits) - 1
			}
		}
	}
	return cs
}

// sortCandidates puts the seen candidates in one order for every process:
// concurrent PostgreSQL transactions then take row locks in the same order
// and cannot deadlock. SQLite has one writer and does not use candidates,
// so it skips the sort (it was a tenth of aggregate's time there).
func (r *rollup) sortCandidates() {
	slices.SortFunc(r.candidates, func(a, b seenCandidate) int {
		if c := strings.Compare(a.site, b.site); c != 0 {
			return c
		}
		if c := strings.Compare(a.day, b.day); c != 0 {
			return c
		}
		return cmp.Compare(a.k, b.k)
	})
}

func (r *rollup) row(dk dailyKey) *dailyRow {
	row := r.daily[dk]
	if row == nil {
		row = &dailyRow{site: dk.site, dim: dk.dim, day: dk.day, value: dk.value}
		r.daily[dk] = row
	}
	return row
}

// finish credits the visitors whose keys were new (isNew) and returns the
// rows to upsert, sorted by key.
func (r *rollup) finish(isNew func(k int64) bool) ([]dailyRow, []hourlyRow) {
	r.credit(isNew)
	return r.sorted()
}

// credit adds a visitor for each credit whose key isNew says is new.
func (r *rollup) credit(isNew func(k int64) bool) {
	for _, c := range r.credits {
		if !isNew(c.k) {
			continue
		}
		for _, dk := range c.daily {
			r.daily[dk].visitors++
		}
		if c.hourly != nil {
			r.hourly[*c.hourly].visitors++
		}
	}
}

// sorted returns the rows to upsert, sorted by key.
func (r *rollup) sorted() ([]dailyRow, []hourlyRow) {
	daily := make([]dailyRow, 0, len(r.daily))
	for _, row := range r.daily {
		daily = append(daily, *row)
	}
	sort.Slice(daily, func(i, j int) bool {
		a, b := &daily[i], &daily[j]
		if a.site != b.site {
			return a.site < b.site
		}
		if a.dim != b.dim {
			return a.dim < b.dim
		}
		if a.day != b.day {
			return a.day < b.day
		}
		return a.value < b.value
	})
	hourly := make([]hourlyRow, 0, len(r.hourly))
	for _, row := range r.hourly {
		hourly = append(hourly, *row)
	}
	sort.Slice(hourly, func(i, j int) bool {
		if hourly[i].site != hourly[j].site {
			return hourly[i].site < hourly[j].site
		}
		return hourly[i].hour.Before(hourly[j].hour)
	})
	return daily, hourly
}

// referrerHost returns the host of a stored referrer ("https://host/path").
func referrerHost(ref string) string {
	if i := strings.Index(ref, "://"); i >= 0 {
		ref = ref[i+3:]
	}
	if i := strings.IndexByte(ref, '/'); i >= 0 {
		ref = ref[:i]
	}
	return ref
}

// campaignOf returns utm_campaign from a stored query.
func campaignOf(query string) string {
	if query == "" {
		return ""
	}
	q, err := url.ParseQuery(query)
	if err != nil {
		return ""
	}
	return q.Get("utm_campaign")
}

// seenKey is FNV-1a (64 bit) over the parts, each ended by a zero byte. It
// need not be secret: the visitor hash in it already is.
func seenKey(site, day string, visitor int64, dim, value string) int64 {
	const offset, prime = 14695981039346656037, 1099511628211
	h := uint64(offset)
	str := func(s string) {
		for i := 0; i < len(s); i++ {
			h ^= uint64(s[i])
			h *= prime
		}
		h *= prime // the terminator: a zero byte xors in nothing
	}
	str(site)
	str(day)
	for i := 0; i < 8; i++ {
		h ^= uint64(byte(visitor >> (8 * i)))
		h *= prime
	}
	str(dim)
	str(value)
	return int64(h)
}

// memberVisitor is the visitor id of a member's linked events: derived
// from the subject, not from the IP, so the linked rows never share a hash
// with the anonymous ones (which would link a member's anonymous visits of
// that day to their account), and so they can be recounted after a
// restart.
func memberVisitor(subjectID, day string) int64 {
	return seenKey("member", day, 0, "subject", subjectID)
}

// totals accumulates finished rollup rows of several batches (SQLite holds
// them back for up to a second), with the ids of the last events counted.
type totals struct {
	daily          map[dailyKey]*dailyRow
	hourly         map[hourKey]*hourlyRow
	anonID, member int64 // watermarks: the last event ids these rows count
	since          time.Time
}

func newTotals() *totals {
	return &totals{daily: map[dailyKey]*dailyRow{}, hourly: map[hourKey]*hourlyRow{}}
}

func (t *totals) empty() bool {
	return len(t.daily) == 0 && len(t.hourly) == 0 && t.anonID == 0 && t.member == 0
}

// add merges rows into t.
func (t *totals) add(daily []dailyRow, hourly []hourlyRow) {
	for _, d := range daily {
		k := dailyKey{d.site, d.dim, d.day, d.value}
		row := t.daily[k]
		if row == nil {
			row = &dailyRow{site: d.site, dim: d.dim, day: d.day, value: d.value}
			t.daily[k] = row
		}
		row.views += d.views
		row.visitors += d.visitors
		row.durationMS += d.durationMS
		row.durations += d.durations
	}
	for _, h := range hourly {
		k := hourKey{h.site, h.hour.Unix()}
		row := t.hourly[k]
		if row == nil {
			row = &hourlyRow{site: h.site, hour: h.hour}
			t.hourly[k] = row
		}
		row.views += h.views
		row.visitors += h.visitors
	}
}

// addRollup merges a credited rollup into t, without the sorted copies
// finish would make: most SQLite batches only add to the held rollups.
func (t *totals) addRollup(r *rollup) {
	for k, d := range r.daily {
		row := t.daily[k]
		if row == nil {
			row = &dailyRow{site: d.site, dim: d.dim, day: d.day, value: d.value}
			t.daily[k] = row
		}
		row.views += d.views
		row.visitors += d.visitors
		row.durationMS += d.durationMS
		row.durations += d.durations
	}
	for k, h := range r.hourly {
		row := t.hourly[k]
		if row == nil {
			row = &hourlyRow{site: h.site, hour: h.hour}
			t.hourly[k] = row
		}
		row.views += h.views
		row.visitors += h.visitors
	}
}

// rows returns t's rows sorted by key.
func (t *totals) rows() ([]dailyRow, []hourlyRow) {
	r := &rollup{daily: t.daily, hourly: t.hourly}
	return r.finish(func(int64) bool { return false })
}
