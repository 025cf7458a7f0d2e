package newsletter

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"steward/internal/store"
)

// The subscription limit per client network is a token bucket kept in
// the database, so several processes serving one database share it: a
// flood spread over them meets the same limit as one sent to one. Each
// request takes the network's row under the row lock (PostgreSQL) or the
// single writer (SQLite), refills it for the time since, and spends a
// token if there is one.

const rateIndexKind = "newsletter subscribe network"

// allow applies the limit to network ("" counts as one unknown network)
// and reports whether the request may go on.
func (s *Service) allow(ctx context.Context, network string) (bool, error) {
	if network == "" {
		network = "unknown"
	}
	key := s.d.Door.BlindIndex(rateIndexKind, network)
	burst := float64(s.d.SubscribeBurst)
	perSecond := float64(s.d.SubscribeRate)
	now := s.d.Clock.Now()
	lock := ""
	if s.d.DB.Engine == store.Postgres {
		lock = " FOR UPDATE"
	}
	allowed := false
	err := s.d.DB.InTx(ctx, func(tx *sql.Tx) error {
		// A network seen first gets a full bucket; two processes meeting
		// it at once both find the one row after this.
		if _, err := tx.ExecContext(ctx, `INSERT INTO newsletter_rate (network_index, tokens, updated_at) VALUES ($1, $2, $3)
			ON CONFLICT (network_index) DO NOTHING`, key, burst, now); err != nil {
			return err
		}
		var tokens float64
		var at time.Time
		if err := tx.QueryRowContext(ctx, `SELECT tokens, updated_at FROM newsletter_rate WHERE network_index = $1`+lock, key).Scan(&tokens, &at); err != nil {
			return err
		}
		// A clock that went back refills nothing.
		if elapsed := now.Sub(at).Seconds(); elapsed > 0 {
			tokens = min(burst, tokens+elapsed*perSecond)
		}
		if tokens >= 1 {
			tokens--
			allowed = true
		}
		_, err := tx.ExecContext(ctx, `UPDATE newsletter_rate SET tokens = $2, updated_at = $3 WHERE network_index = $1`, key, tokens, later(now, at))
		return err
	})
	if err != nil {
		return false, fmt.Errorf("newsletter: subscription limit: %w", err)
	}
	return allowed, nil
}

// later is the later of two times.
func later(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

// pruneRate deletes the rows of networks whose bucket has refilled: a
// missing row is a full bucket.
func (s *Service) pruneRate(ctx context.Context) (int64, error) {
	if s.d.SubscribeRate <= 0 {
		return 0, errors.New("newsletter: no subscription rate")
	}
	full := time.Duration(float64(s.d.SubscribeBurst) / float64(s.d.SubscribeRate) * float64(time.Second))
	res, err := s.d.DB.ExecContext(ctx, `DELETE FROM newsletter_rate WHERE updated_at < $1`, s.d.Clock.Now().Add(-full))
	if err != nil {
		return 0, fmt.Errorf("newsletter: prune limits: %w", err)
	}
	return res.RowsAffected()
}
