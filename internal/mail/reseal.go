package mail

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"

	"steward/internal/door"
	"steward/internal/fault"
)

// legacyColumns pairs each plaintext column of an earlier release with the
// sealed column that replaced it, and the field it holds.
var legacyColumns = []struct{ plain, sealed, field string }{
	{"to_addr", "to_addr_sealed", fieldAddress},
	{"subject", "subject_sealed", fieldMail},
	{"body_text", "body_text_sealed", fieldMail},
	{"body_html", "body_html_sealed", fieldMail},
	{"headers", "headers_sealed", fieldMail},
	{"unsubscribe_url", "unsubscribe_url_sealed", fieldMail},
	{"unsubscribe_mailto", "unsubscribe_mailto_sealed", fieldMail},
}

// resealBatch is how many messages one transaction of Reseal moves.
const resealBatch = 200

// Reseal moves the messages an earlier release kept in plaintext (address,
// subject line, bodies, headers, unsubscribe methods) into their sealed
// columns, sealed for storage, and empties the plaintext ones. A message
// whose subject's key was destroyed (the subject was erased), or whose
// subject is unknown, is deleted: nothing could ever open it again. A value
// of a field the policy no longer declares is dropped. It runs at start-up,
// in batches, and is safe to interrupt and run again; it returns the
// messages it changed.
func (o *Outbox) Reseal(ctx context.Context) (int, error) {
	plain := make([]string, len(legacyColumns))
	pending := make([]string, len(legacyColumns))
	cleared := make([]string, len(legacyColumns))
	for i, c := range legacyColumns {
		plain[i] = c.plain
		pending[i] = c.plain + " <> ''"
		cleared[i] = c.plain + " = ''"
	}
	query := `SELECT id, subject_id, ` + strings.Join(plain, ", ") + ` FROM mail_outbox WHERE ` + strings.Join(pending, " OR ") +
		` ORDER BY id LIMIT $1`
	total := 0
	for {
		n := 0
		err := o.db.InTx(ctx, func(tx *sql.Tx) error {
			rows, err := tx.QueryContext(ctx, query, resealBatch)
			if err != nil {
				return err
			}
			type row struct {
				id, subject string
				vals        []string
			}
			var batch []row
			for rows.Next() {
				r := row{vals: make([]string, len(legacyColumns))}
				dest := []any{&r.id, &r.subject}
				for i := range r.vals {
					dest = append(dest, &r.vals[i])
				}
				if err := rows.Scan(dest...); err != nil {
					rows.Close()
					return err
				}
				batch = append(batch, r)
			}
			rows.Close()
			if err := rows.Err(); err != nil {
				return err
			}
			for _, r := range batch {
				gone := false
				sets := append([]string{}, cleared...)
				args := []any{r.id}
				v, err := o.door.Subject(ctx, tx, door.Storage(), r.subject)
				switch {
				case fault.Is(err, fault.NotFound):
					gone = true
				case err != nil:
					return err
				}
				for i, c := range legacyColumns {
					value := r.vals[i]
					if gone || value == "" || (c.plain == "headers" && (value == "{}" || value == "null")) {
						continue
					}
					if _, err := o.door.CategoryOf(c.field); err != nil {
						continue // the policy no longer declares the field: not kept
					}
					s, err := v.Seal(ctx, c.field, value)
					if errors.Is(err, door.ErrShredded) {
						gone = true // erased: the plaintext left behind goes too
						continue
					}
					if err != nil {
						return err
					}
					args = append(args, s)
					sets = append(sets, fmt.Sprintf("%s = $%d", c.sealed, len(args)))
				}
				if gone {
					_, err = tx.ExecContext(ctx, `DELETE FROM mail_outbox WHERE id = $1`, r.id)
				} else {
					_, err = tx.ExecContext(ctx, `UPDATE mail_outbox SET `+strings.Join(sets, ", ")+` WHERE id = $1`, args...)
				}
				if err != nil {
					return err
				}
			}
			n = len(batch)
			return nil
		})
		if err != nil {
			return total, fmt.Errorf("mail: reseal the outbox: %w", err)
		}
		total += n
		if n < resealBatch {
			return total, nil
		}
	}
}
