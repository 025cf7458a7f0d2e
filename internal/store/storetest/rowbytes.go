package storetest

import (
	"context"
	"fmt"
	"testing"

	"steward/internal/store"
)

// RowBytes returns every stored byte of the rows a query selects, each
// value followed by a zero byte, for checking that no plaintext of a
// personal value is at rest.
func RowBytes(t testing.TB, db *store.DB, query string, args ...any) []byte {
	t.Helper()
	rows, err := db.QueryContext(context.Background(), query, args...)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	cols, _ := rows.Columns()
	var out []byte
	for rows.Next() {
		vals := make([]any, len(cols))
		ptrs := make([]any, len(cols))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		if err := rows.Scan(ptrs...); err != nil {
			t.Fatal(err)
		}
		for _, v := range vals {
			switch x := v.(type) {
			case []byte:
				out = append(out, x...)
			case string:
				out = append(out, x...)
			default:
				out = fmt.Appendf(out, "%v", x)
			}
			out = append(out, 0)
		}
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}
