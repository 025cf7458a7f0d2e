package activity

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"database/sql"
	"encoding/binary"
	"fmt"
	"net/netip"
	"sync"
	"time"

	"steward/internal/store"
)

// saltGrace is how long a day's salt outlives the day: enough for events
// in flight at midnight and for clocks of several processes that differ by
// a little. The destroy job runs every saltSweep, so a salt lives at most
// its day + saltGrace + saltSweep.
const (
	saltGrace = 5 * time.Minute
	saltSweep = 5 * time.Minute
)

type saltKey struct{ site, day string }

type saltEntry struct {
	salt    [32]byte
	expires time.Time
}

// salts hands out the secret salt of a site-day, creating it at the first
// event of the day. The table is the truth, shared by every process; the
// map only saves a query per event.
type salts struct {
	db *store.DB
	mu sync.Mutex
	m  map[saltKey]saltEntry
}

func newSalts(db *store.DB) *salts { return &salts{db: db, m: map[saltKey]saltEntry{}} }

// get returns the salt of site on day, whose day ends at end.
func (s *salts) get(ctx context.Context, site, day string, end, now time.Time) ([32]byte, error) {
	k := saltKey{site, day}
	s.mu.Lock()
	defer s.mu.Unlock()
	if e, ok := s.m[k]; ok {
		return e.salt, nil
	}
	expires := end.Add(saltGrace)
	if !now.Before(expires) {
		// The day is over: its salt is (or is about to be) destroyed and
		// must not be recreated.
		return [32]byte{}, fmt.Errorf("activity: salt of %s %s requested after the day ended", site, day)
	}
	var fresh [32]byte
	if _, err := rand.Read(fresh[:]); err != nil {
		return fresh, fmt.Errorf("activity: new salt: %w", err)
	}
	// Several processes may race to create the day's salt: the first
	// insert wins and everyone reads the winner.
	if _, err := s.db.ExecContext(ctx, `INSERT INTO activity_salts (site, day, salt, created_at, expires_at) VALUES ($1, $2, $3, $4, $5) ON CONFLICT (site, day) DO NOTHING`,
		site, day, fresh[:], now, expires); err != nil {
		return fresh, fmt.Errorf("activity: store salt: %w", err)
	}
	var b []byte
	if err := s.db.QueryRowContext(ctx, `SELECT salt FROM activity_salts WHERE site = $1 AND day = $2`, site, day).Scan(&b); err != nil {
		return fresh, fmt.Errorf("activity: read salt: %w", err)
	}
	var e saltEntry
	if len(b) != len(e.salt) {
		return fresh, fmt.Errorf("activity: salt of %s %s has %d bytes", site, day, len(b))
	}
	copy(e.salt[:], b)
	e.expires = expires
	// Only the current day of each site is worth keeping: drop older
	// entries now rather than waiting for the sweep.
	for old := range s.m {
		if old.site == site {
			delete(s.m, old)
		}
	}
	s.m[k] = e
	return e.salt, nil
}

// prune forgets salts whose day is over, so a process keeps no salt in
// memory longer than the table does.
func (s *salts) prune(now time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for k, e := range s.m {
		if !now.Before(e.expires) {
			delete(s.m, k)
		}
	}
}

// destroyExpired deletes the salts of every site-day that has ended, and
// the seen-keys of those days, which are just as linkable. It returns how
// many salts it destroyed.
func (s *salts) destroyExpired(ctx context.Context, now time.Time, sites []Site) (int, error) {
	s.prune(now)
	var n int
	err := s.db.InTx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `DELETE FROM activity_salts WHERE expires_at <= $1`, now)
		if err != nil {
			return err
		}
		c, _ := res.RowsAffected()
		n = int(c)
		// A day's keys are dead once its salt is: every day before the
		// earliest day that may still receive events. A range on the
		// primary key, never a scan.
		for _, site := range sites {
			live := localDay(now.Add(-saltGrace), site.Location)
			if _, err := tx.ExecContext(ctx, `DELETE FROM activity_seen WHERE site = $1 AND day < $2`, site.ID, live); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("activity: destroy salts: %w", err)
	}
	return n, nil
}

// visitorHash is the day's pseudonym of a visitor: SHA-256 over the secret
// salt, the site, the IP and the user agent, truncated to 64 bits. Without
// the salt, which is destroyed after the day, the hash cannot be recomputed
// from an IP, and two days' hashes of one visitor cannot be linked. The
// salt is a 256-bit random prefix; length extension does not matter here,
// since nobody needs to verify the hash, only to be unable to compute it.
func visitorHash(salt [32]byte, site string, ip netip.Addr, ua string) int64 {
	// One stack buffer: user agents longer than maxAgentLen are bots and
	// never reach here, so it does not grow in practice.
	var buf [32 + 2 + 64 + 16 + maxAgentLen]byte
	b := append(buf[:0], salt[:]...)
	b = binary.BigEndian.AppendUint16(b, uint16(len(site)))
	b = append(b, site...)
	a := ip.Unmap().As16()
	b = append(b, a[:]...)
	b = append(b, ua...)
	sum := sha256.Sum256(b)
	return int64(binary.BigEndian.Uint64(sum[:8]))
}
