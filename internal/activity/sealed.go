package activity

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"steward/internal/door"
	"steward/internal/store"
)

// A member's linked event is their personal data: each of its values is
// sealed with the member's key for the value's category before it is
// stored, and opened through the door when it is read back (the rollups'
// catch-up after a crash, the member's export). The event's time, type,
// duration and site stay in the clear: the rollups and retention select
// by them, and they say nothing about the member once the subject's keys
// are gone.

// nSealed is the number of sealed values of a member event.
const nSealed = 14

// sealedColumns are the sealed columns of activity_member_events, in the
// order of Event.texts, with the policy field each holds and the
// plaintext column of earlier releases it replaced.
var sealedColumns = [nSealed]door.LegacyColumn{
	{Field: FieldPage, Plain: "page", Sealed: "page_sealed"},
	{Field: FieldPage, Plain: "query", Sealed: "query_sealed"},
	{Field: FieldReferrer, Plain: "referrer", Sealed: "referrer_sealed"},
	{Field: FieldSearchTerms, Plain: "search", Sealed: "search_sealed"},
	{Field: FieldOutboundLink, Plain: "link", Sealed: "link_sealed"},
	{Field: FieldAssetInteraction, Plain: "asset", Sealed: "asset_sealed"},
	{Field: FieldEvent, Plain: "name", Sealed: "name_sealed"},
	{Field: FieldEvent, Plain: "props", Sealed: "props_sealed"},
	{Field: FieldCountry, Plain: "country", Sealed: "country_sealed"},
	{Field: FieldRegion, Plain: "region", Sealed: "region_sealed"},
	{Field: FieldCity, Plain: "city", Sealed: "city_sealed"},
	{Field: FieldBrowser, Plain: "browser", Sealed: "browser_sealed"},
	{Field: FieldOS, Plain: "os", Sealed: "os_sealed"},
	{Field: FieldScreen, Plain: "screen", Sealed: "screen_sealed"},
}

// sealedValues are a member event's values as stored.
type sealedValues [nSealed]door.Sealed

// texts points at the event's values in the order of sealedColumns.
func (e *Event) texts() [nSealed]*string {
	return [nSealed]*string{&e.Page, &e.Query, &e.Referrer, &e.Search, &e.Link, &e.Asset, &e.Name, &e.Props,
		&e.Country, &e.Region, &e.City, &e.Browser, &e.OS, &e.Screen}
}

// Reseal moves the values of member events an earlier release stored in
// plaintext into their sealed columns (door.Reseal). It runs at start-up,
// before collection, and is safe to interrupt and run again.
func Reseal(ctx context.Context, db *store.DB, d *door.Door) (int, error) {
	n, err := d.Reseal(ctx, db, door.ResealTable{Table: "activity_member_events", Key: "id", SubjectColumn: "subject_id",
		Columns: sealedColumns[:], Empty: "''"})
	if err != nil {
		return n, fmt.Errorf("activity: %w", err)
	}
	return n, nil
}

// memberRow is a member event read back, its values still sealed.
type memberRow struct {
	id      int64
	subject string
	ev      Event
	sealed  sealedValues
}

// selectMemberRows reads member events back for scanMemberRows: add the WHERE.
const selectMemberRows = `SELECT id, site, at, subject_id, policy_version, type, duration_ms, page_sealed, query_sealed, referrer_sealed,
search_sealed, link_sealed, asset_sealed, name_sealed, props_sealed, country_sealed, region_sealed, city_sealed, browser_sealed, os_sealed, screen_sealed
FROM activity_member_events`

// scanMemberRows reads the rows of a selectMemberRows query. It closes rows.
func scanMemberRows(rows *sql.Rows) ([]memberRow, error) {
	defer rows.Close()
	var out []memberRow
	for rows.Next() {
		var r memberRow
		dest := []any{&r.id, &r.ev.Site, &r.ev.At, &r.subject, &r.ev.PolicyVersion, &r.ev.Type, &r.ev.DurationMS}
		for i := range r.sealed {
			dest = append(dest, &r.sealed[i])
		}
		if err := rows.Scan(dest...); err != nil {
			return out, err
		}
		r.ev.SubjectID = r.subject
		out = append(out, r)
	}
	return out, rows.Err()
}

// openValues opens one row's values, each with the view viewFor gives its
// field (nil: the value stays empty); false when the row's keys were
// destroyed.
func openValues(ctx context.Context, r *memberRow, viewFor func(field string) *door.View) (bool, error) {
	texts := r.ev.texts()
	for i, c := range sealedColumns {
		if r.sealed[i].IsZero() {
			continue
		}
		w := viewFor(c.Field)
		if w == nil {
			continue
		}
		s, err := w.Open(ctx, c.Field, r.sealed[i])
		if errors.Is(err, door.ErrShredded) {
			return false, nil
		}
		if err != nil {
			return false, err
		}
		*texts[i] = s
	}
	return true, nil
}
