package subject

import (
	"context"
	"database/sql"
	"fmt"
	"strings"

	"steward/internal/store"
)

// ExplainState returns the query plan of the State query, for the test
// that checks it reads through indexes only.
func ExplainState(ctx context.Context, db *store.DB) (string, error) {
	var rows *sql.Rows
	var err error
	if db.Engine == store.SQLite {
		rows, err = db.QueryContext(ctx, `EXPLAIN QUERY PLAN `+stateQuery, "s_x")
	} else {
		rows, err = db.QueryContext(ctx, `EXPLAIN `+stateQuery, "s_x")
	}
	if err != nil {
		return "", err
	}
	defer rows.Close()
	cols, _ := rows.Columns()
	var b strings.Builder
	for rows.Next() {
		vals := make([]any, len(cols))
		ptrs := make([]any, len(cols))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		if err := rows.Scan(ptrs...); err != nil {
			return "", err
		}
		fmt.Fprintln(&b, vals[len(vals)-1])
	}
	return b.String(), rows.Err()
}
