package policy

import (
	"context"
	"database/sql"
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"

	"steward/internal/fault"
	"steward/internal/registry"
	"steward/internal/store"
)

//go:embed migrations/*.sql
var migrationFS embed.FS

// Migrations returns the schema of the policy module.
func Migrations() store.Migrations {
	return store.Embedded("policy", migrationFS)
}

// Tables declares the policy module's tables: none holds personal data.
func Tables() []registry.Table {
	return []registry.Table{{
		Name:        "policy_versions",
		Owner:       "policy",
		Origin:      registry.System,
		Description: "every published version of the privacy policy, archived for ever",
		Columns: []registry.Column{
			{Name: "number"}, {Name: "hash"}, {Name: "effective_date"}, {Name: "published_at"},
			{Name: "classification"}, {Name: "significant"}, {Name: "reduces_rights"}, {Name: "reasons"}, {Name: "raw"},
		},
	}}
}

// Version is a published version of the policy.
type Version struct {
	Number         int       `json:"number"`
	Hash           string    `json:"hash"`
	EffectiveDate  time.Time `json:"effective_date"`
	PublishedAt    time.Time `json:"published_at"`
	Classification string    `json:"classification"` // first, minor or significant
	Significant    bool      `json:"significant"`
	ReducesRights  bool      `json:"reduces_rights"`
	Reasons        []string  `json:"reasons"`
	Raw            []byte    `json:"-"`
}

// Published is the policy in force: the parsed document and the record of
// its publication. Every service that runs under the policy takes it in
// this one shape.
type Published struct {
	Policy  *Policy
	Version Version
}

// Number is the published version's number.
func (p Published) Number() int { return p.Version.Number }

// Policy parses the version back. It was checked when it was published;
// checks added to Steward since do not make it unreadable.
func (v Version) Policy() (*Policy, error) {
	return parseArchived("policy version "+strconv.Itoa(v.Number), v.Raw)
}

// Ref is the version as the notice's list of earlier versions names it.
func (v Version) Ref() VersionRef {
	return VersionRef{Number: v.Number, EffectiveDate: v.EffectiveDate, Significant: v.Significant}
}

// publishLockKey serialises publishers on PostgreSQL ("policyv\0").
const publishLockKey = 0x706f6c6963797600

const versionColumns = `number, hash, effective_date, published_at, classification, significant, reduces_rights, reasons, raw`

// Publish records p as the next version unless the latest published
// version has the same hash. It returns the version in force and whether
// it was newly published. Several processes may call it at once: on
// PostgreSQL they queue on an advisory lock, on SQLite on the write lock,
// and the primary key on number settles any remaining race by a retry.
func Publish(ctx context.Context, db *store.DB, p *Policy, now time.Time) (Version, bool, error) {
	for attempt := 0; ; attempt++ {
		v, created, err := publishOnce(ctx, db, p, now)
		if err != nil && store.IsUniqueViolation(err) && attempt < 5 {
			continue
		}
		return v, created, err
	}
}

func publishOnce(ctx context.Context, db *store.DB, p *Policy, now time.Time) (Version, bool, error) {
	var out Version
	created := false
	err := db.InTx(ctx, func(tx *sql.Tx) error {
		if db.Engine == store.Postgres {
			if _, err := tx.ExecContext(ctx, `SELECT pg_advisory_xact_lock($1)`, int64(publishLockKey)); err != nil {
				return fmt.Errorf("policy: publish lock: %w", err)
			}
		}
		latest, err := Latest(ctx, tx)
		switch {
		case err == nil && latest.Hash == p.Hash():
			out = latest
			return nil
		case err != nil && !fault.Is(err, fault.NotFound):
			return err
		}
		v := Version{
			Hash:           p.Hash(),
			EffectiveDate:  p.EffectiveDate(),
			PublishedAt:    now.UTC().Truncate(time.Microsecond),
			Classification: "first",
			Reasons:        []string{"First published version."},
			Raw:            p.Raw(),
		}
		if err == nil {
			v.Number = latest.Number + 1
			prev, perr := latest.Policy()
			if perr != nil {
				// A version this binary cannot read any more is compared as
				// unknown: treat the change as significant and reducing, so
				// members are told and asked, rather than risk less.
				v.Classification, v.Significant, v.ReducesRights = "significant", true, true
				v.Reasons = []string{"The previous version can no longer be compared automatically; treat every change as significant."}
			} else {
				ch := Diff(prev, p)
				v.Classification = ch.Classification()
				if v.Classification == "none" {
					v.Classification = "minor"
				}
				v.Significant, v.ReducesRights, v.Reasons = ch.Significant, ch.ReducesRights, ch.Reasons
			}
		} else {
			v.Number = 1
		}
		reasons, err := json.Marshal(v.Reasons)
		if err != nil {
			return fmt.Errorf("policy: encode reasons: %w", err)
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO policy_versions (`+versionColumns+`) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)`,
			v.Number, v.Hash, p.Version, v.PublishedAt, v.Classification, v.Significant, v.ReducesRights, string(reasons), v.Raw); err != nil {
			return fmt.Errorf("policy: insert version %d: %w", v.Number, err)
		}
		out, created = v, true
		return nil
	})
	if err != nil {
		return Version{}, false, err
	}
	return out, created, nil
}

// Latest returns the newest published version (fault.NotFound when none).
func Latest(ctx context.Context, q store.Q) (Version, error) {
	row := q.QueryRowContext(ctx, `SELECT `+versionColumns+` FROM policy_versions ORDER BY number DESC LIMIT 1`)
	v, err := scanVersion(row)
	if errors.Is(err, sql.ErrNoRows) {
		return Version{}, fault.New(fault.NotFound, "no policy version has been published")
	}
	return v, err
}

// Get returns version n (fault.NotFound when there is none).
func Get(ctx context.Context, q store.Q, n int) (Version, error) {
	row := q.QueryRowContext(ctx, `SELECT `+versionColumns+` FROM policy_versions WHERE number = $1`, n)
	v, err := scanVersion(row)
	if errors.Is(err, sql.ErrNoRows) {
		return Version{}, fault.New(fault.NotFound, "there is no policy version %d", n)
	}
	return v, err
}

// List returns every published version, newest first, without the raw
// file.
func List(ctx context.Context, q store.Q) ([]Version, error) {
	rows, err := q.QueryContext(ctx, `SELECT number, hash, effective_date, published_at, classification, significant, reduces_rights, reasons, '' FROM policy_versions ORDER BY number DESC`)
	if err != nil {
		return nil, fmt.Errorf("policy: list versions: %w", err)
	}
	defer rows.Close()
	var out []Version
	for rows.Next() {
		v, err := scanVersion(rows)
		if err != nil {
			return nil, err
		}
		v.Raw = nil
		out = append(out, v)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("policy: list versions: %w", err)
	}
	return out, nil
}

type scanner interface{ Scan(dest ...any) error }

func scanVersion(s scanner) (Version, error) {
	var v Version
	var eff, reasons string
	var raw []byte
	if err := s.Scan(&v.Number, &v.Hash, &eff, &v.PublishedAt, &v.Classification, &v.Significant, &v.ReducesRights, &reasons, &raw); err != nil {
		if errors.Is(err, sql.ErrNoRows) {
			return Version{}, err
		}
		return Version{}, fmt.Errorf("policy: read version: %w", err)
	}
	v.PublishedAt = v.PublishedAt.UTC()
	if t, err := time.Parse(time.DateOnly, eff); err == nil {
		v.EffectiveDate = t
	}
	if err := json.Unmarshal([]byte(reasons), &v.Reasons); err != nil {
		return Version{}, fmt.Errorf("policy: read reasons of version %d: %w", v.Number, err)
	}
	v.Raw = raw
	return v, nil
}
