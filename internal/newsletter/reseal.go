package newsletter

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"steward/internal/door"
)

// legacyColumn is a plaintext column of an earlier release and the sealed
// column that replaced it, in a table keyed by id with a subject_id.
type legacyColumn struct {
	table, plain, sealed, field string
}

var legacyColumns = []legacyColumn{
	{"newsletter_subscriptions", "source_page", "source_page_sealed", fieldSubscription},
	{"newsletter_events", "url", "url_sealed", fieldOutboundLink},
}

// resealBatch is how many rows one transaction of Reseal moves.
const resealBatch = 200

// Reseal moves the values an earlier release kept in plaintext (the page
// a subscription began on, the link a tracked click followed) into their
// sealed columns and empties the plaintext ones. A value whose key was
// destroyed, of a subject that is gone, or of a field the policy no longer
// declares is dropped. It runs at start-up, in batches of resealBatch rows
// a transaction, and is safe to interrupt and run again; it returns the
// rows it changed.
func (s *Service) Reseal(ctx context.Context) (int, error) {
	total := 0
	for _, c := range legacyColumns {
		for {
			n, err := s.resealBatch(ctx, c)
			total += n
			if err != nil {
				return total, fmt.Errorf("newsletter: reseal %s.%s: %w", c.table, c.plain, err)
			}
			if n < resealBatch {
				break
			}
		}
	}
	return total, nil
}

// resealBatch moves one batch of c and returns how many rows it changed.
func (s *Service) resealBatch(ctx context.Context, c legacyColumn) (int, error) {
	type row struct{ id, subject, value string }
	var batch []row
	err := s.d.DB.InTx(ctx, func(tx *sql.Tx) error {
		rows, err := tx.QueryContext(ctx, `SELECT id, subject_id, `+c.plain+` FROM `+c.table+
			` WHERE `+c.plain+` <> '' ORDER BY id LIMIT $1`, resealBatch)
		if err != nil {
			return err
		}
		var ids []string
		for rows.Next() {
			var r row
			if err := rows.Scan(&r.id, &r.subject, &r.value); err != nil {
				rows.Close()
				return err
			}
			batch = append(batch, r)
			ids = append(ids, r.subject)
		}
		rows.Close()
		if err := rows.Err(); err != nil || len(batch) == 0 {
			return err
		}
		_, undeclared := s.d.Door.CategoryOf(c.field)
		people, err := s.d.Door.Subjects(ctx, tx, door.Storage(), ids)
		if err != nil {
			return err
		}
		for _, r := range batch {
			var sealed door.Sealed
			if v, err := people.View(r.subject); err == nil && undeclared == nil {
				sealed, err = v.Seal(ctx, c.field, r.value)
				if err != nil && !errors.Is(err, door.ErrShredded) {
					return err
				}
			}
			query, args := `UPDATE `+c.table+` SET `+c.plain+` = '' WHERE id = $1`, []any{r.id}
			if !sealed.IsZero() {
				query, args = `UPDATE `+c.table+` SET `+c.plain+` = '', `+c.sealed+` = $2 WHERE id = $1`, append(args, sealed)
			}
			if _, err := tx.ExecContext(ctx, query, args...); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return 0, err
	}
	return len(batch), nil
}
