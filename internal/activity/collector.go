package activity

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"sync"
	"time"

	"steward/internal/clock"
	"steward/internal/fault"
	"steward/internal/store"
)

// Event is one collected event as stored: scrubbed, bounded, and holding
// only what the policy declares. It never holds an IP or a user agent.
type Event struct {
	Site string
	At   time.Time
	// Day is the site-local day ("2006-01-02") and Hour the UTC instant
	// the site-local hour starts: rollups are bucketed by both.
	Day     string
	Hour    time.Time
	Visitor int64 // the day's visitor hash
	Type    string

	Page, Query, Campaign, Referrer, Search string
	Link, Asset, Name, Props                string
	DurationMS                              int64

	Country, Region, City, Browser, OS, Screen string

	// SubjectID is set when the event is linked to a member's account;
	// sealed then holds its values as stored.
	SubjectID     string
	PolicyVersion int
	sealed        *sealedValues
}

// Request is what the HTTP layer knows about the sender of an event. The
// IP and user agent are used for the visitor hash, the location and the
// browser family, and then dropped.
type Request struct {
	IP        netip.Addr
	UserAgent string
	// Origin is the request's Origin header ("" when absent).
	Origin string
	// GPC is the Sec-GPC: 1 signal: the event is never linked to an
	// account, and nothing is stored to remember the signal.
	GPC bool
	// SubjectID is the signed-in member, "" when anonymous.
	SubjectID string
}

// Link is what may be done with a signed-in member's event.
type Link int

const (
	// RecordAnonymously stores the event without the account.
	RecordAnonymously Link = iota
	// LinkAccount stores the event as the member's personal data.
	LinkAccount
	// DoNotRecord drops the event (the member objected to, or restricted,
	// the processing activity data serves).
	DoNotRecord
)

// ErrNotRecorded is returned by Collect for an event deliberately not
// stored: a bot, or a member whose objection or restriction forbids it.
// The endpoint answers 204.
var ErrNotRecorded = errors.New("activity: event not recorded")

// Deps are the collector's dependencies.
type Deps struct {
	DB     *store.DB
	Clock  clock.Clock
	Log    *slog.Logger
	Config Config
	// Geo locates IPs; nil uses the embedded country table only.
	Geo *Geo
	// Members decides about signed-in members' events and seals those
	// linked to their account; nil records them anonymously.
	Members *PolicyGate
	// BatchSize bounds a group commit (256 when zero); QueueSize bounds
	// the events waiting for the writer (8192 when zero).
	BatchSize, QueueSize int
	// RollupInterval is how long rollups are held back to aggregate them
	// (1 s when zero; negative writes them with every batch on SQLite and
	// every 50 ms on PostgreSQL).
	RollupInterval time.Duration
}

// Collector validates, pseudonymises and durably stores events. Start it
// before use; Close drains it.
type Collector struct {
	db     *store.DB
	clock  clock.Clock
	log    *slog.Logger
	cfg    Config
	sites  map[string]Site // cfg.Sites by id
	geo    *Geo
	gate   *PolicyGate
	salts  *salts
	agents *agents
	pages  *urlCache[pageParts]
	refs   *urlCache[refParts]
	w      *writer

	tracker    []byte
	trackerTag string

	startOnce sync.Once
	startErr  error
}

// New builds a collector. It does not start the writer: call Start.
func New(d Deps) (*Collector, error) {
	if d.DB == nil || d.Clock == nil || d.Log == nil {
		return nil, errors.New("activity: DB, Clock and Log are required")
	}
	cfg, err := d.Config.validate()
	if err != nil {
		return nil, err
	}
	if d.Geo == nil {
		d.Geo = NewGeo()
	}
	if d.BatchSize <= 0 {
		d.BatchSize = 256
	}
	if d.QueueSize <= 0 {
		d.QueueSize = 8192
	}
	c := &Collector{
		db: d.DB, clock: d.Clock, log: d.Log, cfg: cfg, geo: d.Geo, gate: d.Members,
		salts: newSalts(d.DB), agents: newAgents(), sites: map[string]Site{},
		pages: newURLCache[pageParts](), refs: newURLCache[refParts](),
	}
	for _, s := range cfg.Sites {
		c.sites[s.ID] = s
	}
	switch {
	case d.RollupInterval == 0:
		d.RollupInterval = time.Second
	case d.RollupInterval < 0:
		d.RollupInterval = 0
	}
	c.w = newWriter(c, d.BatchSize, d.QueueSize, d.RollupInterval)
	c.tracker, c.trackerTag = buildTracker(cfg)
	return c, nil
}

// Start prepares the writer and runs it until Close. On SQLite it first
// refills today's unique-visitor keys and rolls up events a crash left
// without their rollups, so it takes a moment on a large day. Events sent
// before Start wait for it.
func (c *Collector) Start(ctx context.Context) error {
	c.startOnce.Do(func() {
		if c.db.Engine == store.Postgres {
			if err := c.w.startPostgres(ctx); err != nil {
				c.startErr = err
				c.log.Error("activity: start: events a stopped process left are not rolled up yet", "err", err)
			}
		} else if err := c.w.startSQLite(ctx); err != nil {
			c.startErr = err
			c.log.Error("activity: start: visitors may be counted twice today", "err", err)
		}
		c.w.start(context.WithoutCancel(ctx))
	})
	return c.startErr
}

// Close stops taking events, commits every event already queued, writes
// the rollups held back, and waits for the writer to finish (or ctx to
// end).
func (c *Collector) Close(ctx context.Context) error {
	c.Start(ctx) // a never-started writer still has to drain and release
	return c.w.close(ctx)
}

// Flush writes the rollups held back (on SQLite up to RollupInterval) and
// returns once reports count every event acknowledged before the call.
func (c *Collector) Flush(ctx context.Context) error { return c.w.flush(ctx) }

// Collect validates an event, derives the visitor hash, location and
// browser family from the request, and returns once the event is
// committed. Errors are coded: Invalid for bad input (nothing stored),
// ErrNotRecorded for events deliberately dropped, and Internal when the
// database failed (the event may not have been stored; it was not
// acknowledged).
func (c *Collector) Collect(ctx context.Context, in Input, r Request) error {
	ev, err := c.Prepare(ctx, in, r)
	if err != nil {
		return err
	}
	return c.w.submit(ctx, ev)
}

// Prepare does everything Collect does except storing: it returns the
// event that would be written. The load benchmark and tests use it.
func (c *Collector) Prepare(ctx context.Context, in Input, r Request) (Event, error) {
	site, ok := c.Site(in.Site)
	if !ok {
		if in.Site == "" {
			return Event{}, fault.FieldError("site", "site is required")
		}
		return Event{}, fault.FieldError("site", "unknown site")
	}
	if r.Origin != "" && r.Origin != "null" && len(site.Origins) > 0 && !site.AllowsOrigin(r.Origin) {
		return Event{}, fault.New(fault.Forbidden, "this origin may not send events for site %s", site.ID)
	}
	now := c.clock.Now()
	ev, err := c.normalize(in, site, now)
	if err != nil {
		return Event{}, err
	}
	ag := c.agents.parse(r.UserAgent)
	if ag.Bot {
		return Event{}, ErrNotRecorded
	}
	ev.Day = localDay(now, site.Location)
	ev.Hour = localHourStart(now, site.Location)
	salt, err := c.salts.get(ctx, site.ID, ev.Day, localDayEnd(now, site.Location), now)
	if err != nil {
		return Event{}, err
	}
	ev.Visitor = visitorHash(salt, site.ID, r.IP, r.UserAgent)
	if c.cfg.Fields[FieldCountry] {
		loc := c.geo.Locate(r.IP, c.cfg.Granularity)
		ev.Country = loc.Country
		if c.cfg.Fields[FieldRegion] {
			ev.Region = loc.Region
		}
		if c.cfg.Fields[FieldCity] {
			ev.City = loc.City
		}
	}
	if ev.Type == TypePageview {
		if c.cfg.Fields[FieldBrowser] {
			ev.Browser = ag.Browser
		}
		if c.cfg.Fields[FieldOS] {
			ev.OS = ag.OS
		}
	} else {
		// Location and device describe the visit; they are counted on page
		// views and not repeated on every click.
		ev.Country, ev.Region, ev.City = "", "", ""
	}
	if r.SubjectID != "" && c.gate != nil {
		// GPC keeps even a member's event anonymous; nothing records that
		// the signal was sent.
		link, err := c.gate.member(ctx, &ev, r.SubjectID, c.cfg.LinkToAccount && !r.GPC)
		if err != nil {
			return Event{}, fmt.Errorf("activity: member gate: %w", err)
		}
		switch link {
		case DoNotRecord:
			return Event{}, ErrNotRecorded
		case LinkAccount:
			ev.SubjectID = r.SubjectID
			ev.PolicyVersion = c.cfg.PolicyVersion
			ev.Visitor = memberVisitor(ev.SubjectID, ev.Day)
		}
	}
	return ev, nil
}

// localDay is the site-local date of t.
func localDay(t time.Time, loc *time.Location) string { return t.In(loc).Format(time.DateOnly) }

// localDayEnd is the instant the site-local day of t ends.
func localDayEnd(t time.Time, loc *time.Location) time.Time {
	lt := t.In(loc)
	return time.Date(lt.Year(), lt.Month(), lt.Day()+1, 0, 0, 0, 0, loc).UTC()
}

// localHourStart is the instant the site-local hour of t starts. It
// subtracts the local minutes and seconds instead of truncating, because
// Truncate works on absolute time and would start a +05:30 site's hours
// at half past.
func localHourStart(t time.Time, loc *time.Location) time.Time {
	lt := t.In(loc)
	into := time.Duration(lt.Minute())*time.Minute + time.Duration(lt.Second())*time.Second + time.Duration(lt.Nanosecond())
	return t.Add(-into).UTC()
}

// place fills in what a stored event row does not hold: its site-local day
// and hour and its campaign. It reports false for a site no longer
// configured.
func (c *Collector) place(e *Event, site string, at time.Time) bool {
	s, ok := c.sites[site]
	if !ok {
		return false
	}
	e.Site, e.At = site, at.UTC()
	e.Day = localDay(e.At, s.Location)
	e.Hour = localHourStart(e.At, s.Location)
	e.Campaign = campaignOf(e.Query)
	return true
}

// selectAnonEvents reads stored anonymous events back for scanEvents: add
// the WHERE.
const selectAnonEvents = `SELECT id, site, at, visitor, type, page, query, referrer, search, link, asset, name, duration_ms, country, region, city, browser, os, screen
FROM activity_events`

// scanEvents appends the anonymous events of rows (the columns of
// selectAnonEvents) to evs, placed as they were when collected. each, if
// not nil, sees every event kept with its id. It closes rows.
func (c *Collector) scanEvents(rows *sql.Rows, evs []Event, each func(e *Event, id int64)) ([]Event, error) {
	defer rows.Close()
	for rows.Next() {
		var e Event
		var id int64
		var site string
		var at time.Time
		if err := rows.Scan(&id, &site, &at, &e.Visitor, &e.Type, &e.Page, &e.Query, &e.Referrer, &e.Search, &e.Link, &e.Asset, &e.Name,
			&e.DurationMS, &e.Country, &e.Region, &e.City, &e.Browser, &e.OS, &e.Screen); err != nil {
			return evs, err
		}
		if !c.place(&e, site, at) {
			continue
		}
		if each != nil {
			each(&e, id)
		}
		evs = append(evs, e)
	}
	return evs, rows.Err()
}

// memberEvents appends the member events a selectMemberRows query (where
// and args) finds to evs, opened through the door for counting and placed
// as they were when collected, with their member visitor id. Without a
// gate none can be opened, and none are read. each is as for scanEvents.
func (c *Collector) memberEvents(ctx context.Context, q store.Q, evs []Event, each func(e *Event, id int64), where string, args ...any) ([]Event, error) {
	if c.gate == nil {
		return evs, nil
	}
	rows, err := q.QueryContext(ctx, selectMemberRows+" "+where, args...)
	if err != nil {
		return evs, err
	}
	rs, err := scanMemberRows(rows)
	if err != nil {
		return evs, err
	}
	if rs, err = c.gate.open(ctx, q, rs); err != nil {
		return evs, err
	}
	for _, r := range rs {
		e := r.ev
		if !c.place(&e, e.Site, e.At) {
			continue
		}
		e.Visitor = memberVisitor(r.subject, e.Day)
		if each != nil {
			each(&e, r.id)
		}
		evs = append(evs, e)
	}
	return evs, nil
}
