package door

import (
	"context"
	"database/sql"
	"log/slog"
	"sync"
	"time"

	"steward/internal/clock"
	"steward/internal/policy"
	"steward/internal/store"
)

// denials records the door's refusals in the audit log. A refusal on an
// ordinary path is recorded at once, in its own transaction. Two kinds
// wait: a refusal met inside the caller's transaction (which may roll
// back, and on SQLite holds the only write lock) is recorded right after,
// by the flusher, and the refusals of hot paths are counted per kind and
// recorded once a minute with their count. Close flushes what is held, so
// none goes unrecorded on a clean stop.
type denials struct {
	rec   Recorder
	clock clock.Clock
	log   *slog.Logger

	mu   sync.Mutex
	held map[heldKey]int
	wake chan struct{}
}

type heldKey struct {
	subject, actor, purpose, category string
	reason                            policy.Reason
	minute                            int64
}

func newDenials(r Recorder, c clock.Clock, log *slog.Logger) *denials {
	return &denials{rec: r, clock: c, log: log, held: map[heldKey]int{}, wake: make(chan struct{}, 1)}
}

func (d *denials) record(ctx context.Context, q store.Q, u Use, den policy.Denial) error {
	_, inTx := q.(*sql.Tx)
	if !u.Hot && !inTx {
		return d.rec.RecordDenial(ctx, den)
	}
	k := heldKey{subject: den.SubjectID, actor: den.Actor, purpose: den.Purpose, category: den.Category, reason: den.Reason,
		minute: d.clock.Now().Unix() / 60}
	if u.Hot {
		k.subject = "" // counted per kind: the subjects of a hot path are many
	}
	d.mu.Lock()
	d.held[k]++
	d.mu.Unlock()
	if !u.Hot {
		select {
		case d.wake <- struct{}{}:
		default:
		}
	}
	return nil
}

// run flushes held denials: at once after a refusal inside a transaction,
// and every minute for the hot paths' counts.
func (d *denials) run(ctx context.Context) {
	t := time.NewTicker(time.Minute)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-d.wake:
		case <-t.C:
		}
		if err := d.flush(context.WithoutCancel(ctx)); err != nil {
			d.log.Warn("door: record held denials", "err", err)
		}
	}
}

func (d *denials) flush(ctx context.Context) error {
	d.mu.Lock()
	held := d.held
	d.held = map[heldKey]int{}
	d.mu.Unlock()
	var first error
	for k, n := range held {
		den := policy.Denial{SubjectID: k.subject, Actor: k.actor, Purpose: k.purpose, Category: k.category, Reason: k.reason}
		if n > 1 || k.subject == "" {
			den.Count = n
			den.Minute = time.Unix(k.minute*60, 0).UTC().Format(time.RFC3339)
		}
		if err := d.rec.RecordDenial(ctx, den); err != nil {
			if first == nil {
				first = err
			}
			// Keep it for the next flush rather than lose it.
			d.mu.Lock()
			d.held[k] += n
			d.mu.Unlock()
		}
	}
	return first
}
