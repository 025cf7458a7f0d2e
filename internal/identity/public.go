package identity

import (
	"context"
	"fmt"
	"strings"

	"steward/internal/door"
)

// DisplayNames opens the display names of many subjects at once, each
// through the batch's view of that subject (a comment thread shows its
// authors' names and nothing else of them). A subject without an account
// or a name, or whose name the batch's use may not read, gets "".
func (s *Service) DisplayNames(ctx context.Context, b *door.Batch, ids []string) (map[string]string, error) {
	out := make(map[string]string, len(ids))
	for start := 0; start < len(ids); start += 500 {
		part := ids[start:min(len(ids), start+500)]
		ph := make([]string, len(part))
		args := make([]any, len(part))
		for i, id := range part {
			ph[i], args[i] = fmt.Sprintf("$%d", i+1), id
		}
		rows, err := s.db.QueryContext(ctx, `SELECT subject_id, name_sealed FROM accounts WHERE subject_id IN (`+strings.Join(ph, ", ")+`)`, args...)
		if err != nil {
			return nil, fmt.Errorf("identity: display names: %w", err)
		}
		for rows.Next() {
			var id string
			var name door.Sealed
			if err := rows.Scan(&id, &name); err != nil {
				rows.Close()
				return nil, fmt.Errorf("identity: display names: %w", err)
			}
			v, err := b.View(id)
			if err != nil || name.IsZero() {
				continue
			}
			cat, err := s.door.CategoryOf(FieldName)
			if err != nil || v.Check(cat) != nil {
				continue
			}
			if n, err := v.Open(ctx, FieldName, name); err == nil {
				out[id] = n
			}
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return nil, fmt.Errorf("identity: display names: %w", err)
		}
	}
	return out, nil
}
