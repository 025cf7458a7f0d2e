package store

import "database/sql"

// Maps reads every row into a map from the names (one per selected
// column, in order) to the values the driver gave; keep, when not nil,
// drops the rows it returns false for. It closes rows.
func Maps(rows *sql.Rows, names []string, keep func(map[string]any) bool) ([]map[string]any, error) {
	defer rows.Close()
	raw := make([]any, len(names))
	ptrs := make([]any, len(names))
	for i := range raw {
		ptrs[i] = &raw[i]
	}
	var out []map[string]any
	for rows.Next() {
		if err := rows.Scan(ptrs...); err != nil {
			return nil, err
		}
		m := make(map[string]any, len(names))
		for i, n := range names {
			m[n] = raw[i]
		}
		if keep == nil || keep(m) {
			out = append(out, m)
		}
	}
	return out, rows.Err()
}
