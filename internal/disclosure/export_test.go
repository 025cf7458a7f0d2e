package disclosure

import (
	"context"
	"database/sql"
)

// NotifyAsRead runs the notify job's telling with the request as lr shows
// it, in a transaction of its own: two calls with one stale lr are two
// jobs that both read the subjects untold.
func (s *Service) NotifyAsRead(ctx context.Context, lr LegalRequest) error {
	return s.d.DB.InTx(ctx, func(tx *sql.Tx) error { return s.notify(ctx, tx, lr) })
}
