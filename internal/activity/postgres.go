package activity

import (
	"context"
	"database/sql"
	"fmt"
	"time"
)

// The PostgreSQL path: several Steward processes may write to one
// database, so each batch writes its events, its seen-keys and its rollups
// in one transaction (the seen-keys the insert returns decide which
// visitors are new), and reports are current as soon as the events are.

const (
	pgEvents = `INSERT INTO activity_events (` + eventCols + `)
SELECT * FROM unnest($1::text[], $2::timestamptz[], $3::bigint[], $4::text[], $5::text[], $6::text[], $7::text[], $8::text[], $9::text[], $10::text[], $11::text[], $12::text[], $13::bigint[], $14::text[], $15::text[], $16::text[], $17::text[], $18::text[], $19::text[])`
	pgMember = `INSERT INTO activity_member_events (` + memberCols + `)
SELECT * FROM unnest($1::text[], $2::bigint[], $3::text[], $4::timestamptz[], $5::text[], $6::text[], $7::text[], $8::text[], $9::text[], $10::text[], $11::text[], $12::text[], $13::text[], $14::bigint[], $15::text[], $16::text[], $17::text[], $18::text[], $19::text[], $20::text[])`
	pgSeen = `INSERT INTO activity_seen (site, day, k)
SELECT * FROM unnest($1::text[], $2::text[], $3::bigint[]) ON CONFLICT DO NOTHING RETURNING k`
	pgDaily = `INSERT INTO activity_daily (site, dim, day, value, views, visitors, duration_ms, durations)
SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::bigint[], $6::bigint[], $7::bigint[], $8::bigint[])
ON CONFLICT (site, dim, day, value) DO UPDATE SET views = activity_daily.views + EXCLUDED.views, visitors = activity_daily.visitors + EXCLUDED.visitors, duration_ms = activity_daily.duration_ms + EXCLUDED.duration_ms, durations = activity_daily.durations + EXCLUDED.durations`
	pgHourly = `INSERT INTO activity_hourly (site, hour, views, visitors)
SELECT * FROM unnest($1::text[], $2::timestamptz[], $3::bigint[], $4::bigint[])
ON CONFLICT (site, hour) DO UPDATE SET views = activity_hourly.views + EXCLUDED.views, visitors = activity_hourly.visitors + EXCLUDED.visitors`
)

func (w *writer) writePostgres(ctx context.Context, evs []Event, agg *rollup) error {
	agg.sortCandidates()
	return w.c.db.InTx(ctx, func(tx *sql.Tx) error {
		var anon, linked []*Event
		for i := range evs {
			if evs[i].SubjectID != "" {
				linked = append(linked, &evs[i])
			} else {
				anon = append(anon, &evs[i])
			}
		}
		if len(anon) > 0 {
			n := len(anon)
			site, typ := make([]string, n), make([]string, n)
			at := make([]time.Time, n)
			visitor, dur := make([]int64, n), make([]int64, n)
			txt := make([][]string, 14)
			for j := range txt {
				txt[j] = make([]string, n)
			}
			for i, e := range anon {
				site[i], at[i], visitor[i], typ[i], dur[i] = e.Site, e.At, e.Visitor, e.Type, e.DurationMS
				for j, v := range [...]string{e.Page, e.Query, e.Referrer, e.Search, e.Link, e.Asset, e.Name, e.Props, e.Country, e.Region, e.City, e.Browser, e.OS, e.Screen} {
					txt[j][i] = v
				}
			}
			if _, err := tx.ExecContext(ctx, pgEvents, site, at, visitor, typ,
				txt[0], txt[1], txt[2], txt[3], txt[4], txt[5], txt[6], txt[7], dur,
				txt[8], txt[9], txt[10], txt[11], txt[12], txt[13]); err != nil {
				return fmt.Errorf("activity: insert events: %w", err)
			}
		}
		if len(linked) > 0 {
			n := len(linked)
			subj, site, typ := make([]string, n), make([]string, n), make([]string, n)
			ver := make([]int64, n)
			at := make([]time.Time, n)
			dur := make([]int64, n)
			txt := make([][]string, 14)
			for j := range txt {
				txt[j] = make([]string, n)
			}
			for i, e := range linked {
				subj[i], ver[i], site[i], at[i], typ[i], dur[i] = e.SubjectID, int64(e.PolicyVersion), e.Site, e.At, e.Type, e.DurationMS
				for j, v := range [...]string{e.Page, e.Query, e.Referrer, e.Search, e.Link, e.Asset, e.Name, e.Props, e.Country, e.Region, e.City, e.Browser, e.OS, e.Screen} {
					txt[j][i] = v
				}
			}
			if _, err := tx.ExecContext(ctx, pgMember, subj, ver, site, at, typ,
				txt[0], txt[1], txt[2], txt[3], txt[4], txt[5], txt[6], txt[7], dur,
				txt[8], txt[9], txt[10], txt[11], txt[12], txt[13]); err != nil {
				return fmt.Errorf("activity: insert member events: %w", err)
			}
		}
		newKeys := map[int64]bool{}
		if n := len(agg.candidates); n > 0 {
			site, day, k := make([]string, n), make([]string, n), make([]int64, n)
			for i, c := range agg.candidates {
				site[i], day[i], k[i] = c.site, c.day, c.k
			}
			rows, err := tx.QueryContext(ctx, pgSeen, site, day, k)
			if err != nil {
				return fmt.Errorf("activity: insert seen: %w", err)
			}
			for rows.Next() {
				var key int64
				if err := rows.Scan(&key); err != nil {
					rows.Close()
					return fmt.Errorf("activity: insert seen: %w", err)
				}
				newKeys[key] = true
			}
			rows.Close()
			if err := rows.Err(); err != nil {
				return fmt.Errorf("activity: insert seen: %w", err)
			}
		}
		daily, hourly := agg.finish(func(k int64) bool { return newKeys[k] })
		if n := len(daily); n > 0 {
			site, dim, day, value := make([]string, n), make([]string, n), make([]string, n), make([]string, n)
			views, visitors, durMS, durN := make([]int64, n), make([]int64, n), make([]int64, n), make([]int64, n)
			for i, d := range daily {
				site[i], dim[i], day[i], value[i] = d.site, d.dim, d.day, d.value
				views[i], visitors[i], durMS[i], durN[i] = d.views, d.visitors, d.durationMS, d.durations
			}
			if _, err := tx.ExecContext(ctx, pgDaily, site, dim, day, value, views, visitors, durMS, durN); err != nil {
				return fmt.Errorf("activity: upsert daily rollups: %w", err)
			}
		}
		if n := len(hourly); n > 0 {
			site := make([]string, n)
			hour := make([]time.Time, n)
			views, visitors := make([]int64, n), make([]int64, n)
			for i, h := range hourly {
				site[i], hour[i], views[i], visitors[i] = h.site, h.hour, h.views, h.visitors
			}
			if _, err := tx.ExecContext(ctx, pgHourly, site, hour, views, visitors); err != nil {
				return fmt.Errorf("activity: upsert hourly rollups: %w", err)
			}
		}
		return nil
	})
}
