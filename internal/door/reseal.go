package door

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"strings"

	"steward/internal/fault"
	"steward/internal/store"
)

// LegacyColumn pairs a plaintext column an earlier release wrote with the
// sealed column that replaced it, and the policy field it holds.
type LegacyColumn struct {
	Field, Plain, Sealed string
	// Nothing lists plaintext values beyond "" that hold no value (an
	// empty JSON object): they are emptied, not sealed.
	Nothing []string
}

// ResealTable describes a table whose legacy plaintext columns move into
// sealed ones. Its owner names it; the door only seals.
type ResealTable struct {
	Table, Key, SubjectColumn string
	Columns                   []LegacyColumn
	// Empty is what an emptied plaintext column holds: "NULL", or "''"
	// where the column is NOT NULL.
	Empty string
	// DropErased deletes a row whose subject is unknown or whose key was
	// destroyed, when nothing could ever open it again (a held message);
	// otherwise such a row keeps its other columns and loses the value.
	DropErased bool
}

// resealBatch is how many rows one transaction of Reseal moves.
const resealBatch = 200

// Reseal moves the values of a table's legacy plaintext columns into their
// sealed columns, for the storage purpose, and empties the plaintext ones
// in the same statement, so no value is ever held twice in plaintext. A
// value whose key was destroyed, or of a field the policy no longer
// declares, is dropped. It works in transactions of a few hundred rows and
// is safe to interrupt and run again (a crash leaves every row either
// moved or untouched); it returns the rows it changed.
func (o *Door) Reseal(ctx context.Context, db *store.DB, t ResealTable) (int, error) {
	var plain, pending, cleared []string
	for _, c := range t.Columns {
		plain = append(plain, c.Plain)
		pending = append(pending, "("+c.Plain+" IS NOT NULL AND "+c.Plain+" <> '')")
		cleared = append(cleared, c.Plain+" = "+t.Empty)
	}
	query := `SELECT ` + t.Key + `, ` + t.SubjectColumn + `, ` + strings.Join(plain, ", ") + ` FROM ` + t.Table +
		` WHERE ` + strings.Join(pending, " OR ") + ` ORDER BY ` + t.Key + ` LIMIT $1`
	type row struct {
		key     any
		subject string
		vals    []sql.NullString
	}
	total := 0
	for {
		n := 0
		err := db.InTx(ctx, func(tx *sql.Tx) error {
			rows, err := tx.QueryContext(ctx, query, resealBatch)
			if err != nil {
				return err
			}
			var batch []row
			for rows.Next() {
				r := row{vals: make([]sql.NullString, len(t.Columns))}
				dest := []any{&r.key, &r.subject}
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
			views := map[string]*View{}
			for _, r := range batch {
				v, seen := views[r.subject]
				if !seen {
					v, err = o.Subject(ctx, tx, Storage(), r.subject)
					if err != nil && !(t.DropErased && fault.Is(err, fault.NotFound)) {
						return err
					}
					views[r.subject] = v // nil: no such subject
				}
				gone := v == nil
				sets := append([]string{}, cleared...)
				args := []any{r.key}
				for i, c := range t.Columns {
					value := r.vals[i].String
					if gone || !r.vals[i].Valid || value == "" || slices.Contains(c.Nothing, value) {
						continue
					}
					if _, err := o.CategoryOf(c.Field); err != nil {
						continue // the policy no longer declares the field: not kept
					}
					sealed, err := v.Seal(ctx, c.Field, value)
					if errors.Is(err, ErrShredded) {
						gone = t.DropErased
						continue // erased: the plaintext left behind goes too
					}
					if err != nil {
						return err
					}
					args = append(args, sealed)
					sets = append(sets, fmt.Sprintf("%s = $%d", c.Sealed, len(args)))
				}
				if gone {
					_, err = tx.ExecContext(ctx, `DELETE FROM `+t.Table+` WHERE `+t.Key+` = $1`, r.key)
				} else {
					_, err = tx.ExecContext(ctx, `UPDATE `+t.Table+` SET `+strings.Join(sets, ", ")+` WHERE `+t.Key+` = $1`, args...)
				}
				if err != nil {
					return err
				}
			}
			n = len(batch)
			return nil
		})
		if err != nil {
			return total, fmt.Errorf("door: reseal %s: %w", t.Table, err)
		}
		total += n
		if n < resealBatch {
			return total, nil
		}
	}
}
