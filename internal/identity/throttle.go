package identity

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"fmt"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/time/rate"

	"steward/internal/fault"
	"steward/internal/store"
)

// Throttle scopes. Login counts failures; sign-up, resend and reset count
// every attempt, since each one may send a mail to someone.
const (
	scopeLoginAccount  = "login:account"
	scopeLoginIP       = "login:ip"
	scopeSignupAccount = "signup:account"
	scopeSignupIP      = "signup:ip"
	scopeResetAccount  = "reset:account"
	scopeResetIP       = "reset:ip"
)

// Limits says how many events a key may have within Window before it is
// locked for Window.
type Limits struct {
	Window        time.Duration
	LoginAccount  int // failed logins per account (email), known or not
	LoginIP       int // failed logins per client network
	SignupAccount int // sign-up and resend attempts per email
	SignupIP      int
	ResetAccount  int // reset requests per email
	ResetIP       int
	MemoryPerSec  float64 // in-memory first line: auth attempts per second per network
	MemoryBurst   int
	MemoryMaxIPs  int // entries kept before idle ones are dropped
}

// DefaultLimits are the limits a server runs with unless configured.
var DefaultLimits = Limits{
	Window:        15 * time.Minute,
	LoginAccount:  10,
	LoginIP:       50,
	SignupAccount: 5,
	SignupIP:      20,
	ResetAccount:  5,
	ResetIP:       20,
	MemoryPerSec:  2,
	MemoryBurst:   30,
	MemoryMaxIPs:  10000,
}

// errThrottled is the one answer to every throttled attempt, so a locked
// unknown address and a locked account look the same.
func errThrottled() error {
	return fault.New(fault.RateLimited, "too many attempts; wait a few minutes and try again")
}

// throttle limits authentication attempts in two lines: an in-memory token
// bucket per client network that turns a flood away before it reaches the
// database, and failure counts in auth_throttle that survive restarts and
// are shared by every process on the database. Keys are HMACs of the scope
// and the email or network under a server secret: the table never holds a
// raw address, and a stolen copy of it cannot be matched against a list of
// addresses without the secret.
type throttle struct {
	db     *store.DB
	limits Limits
	secret []byte

	mu  sync.Mutex
	mem map[netip.Prefix]*rate.Limiter
}

func newThrottle(db *store.DB, l Limits, secret []byte) *throttle {
	return &throttle{db: db, limits: l, secret: secret, mem: map[netip.Prefix]*rate.Limiter{}}
}

// network returns the unit an IP limit applies to: the address for IPv4,
// its /64 for IPv6 (one subscriber usually holds a whole /64). The zero
// prefix means "no client address" (the CLI, tests), which is not limited.
func network(ip netip.Addr) netip.Prefix {
	if !ip.IsValid() {
		return netip.Prefix{}
	}
	ip = ip.Unmap()
	bits := 32
	if ip.Is6() {
		bits = 64
	}
	p, _ := ip.Prefix(bits)
	return p
}

func (t *throttle) key(scope, value string) string {
	m := hmac.New(sha256.New, t.secret)
	m.Write([]byte(scope))
	m.Write([]byte{0})
	m.Write([]byte(value))
	return hex.EncodeToString(m.Sum(nil)[:20])
}

// allowMemory is the first line: cheap, per process, per network.
func (t *throttle) allowMemory(ip netip.Addr, now time.Time) bool {
	n := network(ip)
	if !n.IsValid() || t.limits.MemoryPerSec <= 0 {
		return true
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	lim := t.mem[n]
	if lim == nil {
		if len(t.mem) >= t.limits.MemoryMaxIPs {
			// Drop the idle buckets (full ones): they would allow a burst
			// anyway, so forgetting them changes nothing.
			for k, l := range t.mem {
				if l.TokensAt(now) >= float64(t.limits.MemoryBurst) {
					delete(t.mem, k)
				}
			}
			if len(t.mem) >= t.limits.MemoryMaxIPs {
				clear(t.mem)
			}
		}
		lim = rate.NewLimiter(rate.Limit(t.limits.MemoryPerSec), t.limits.MemoryBurst)
		t.mem[n] = lim
	}
	return lim.AllowN(now, 1)
}

// subject is one thing a limit counts: a scope and the key of the email
// or network.
type counted struct {
	key   string
	scope string
	limit int
}

// keys returns the counted subjects of an attempt. The email is the
// normalised address (or, when it does not normalise, the raw input, so
// garbage is limited too).
func (t *throttle) keys(accountScope, ipScope string, email string, ip netip.Addr) []counted {
	var out []counted
	limit := map[string]int{
		scopeLoginAccount: t.limits.LoginAccount, scopeLoginIP: t.limits.LoginIP, scopeSecondFactor: t.limits.LoginAccount,
		scopeSignupAccount: t.limits.SignupAccount, scopeSignupIP: t.limits.SignupIP,
		scopeResetAccount: t.limits.ResetAccount, scopeResetIP: t.limits.ResetIP,
	}
	if email != "" {
		out = append(out, counted{t.key(accountScope, email), accountScope, limit[accountScope]})
	}
	if n := network(ip); n.IsValid() {
		out = append(out, counted{t.key(ipScope, n.String()), ipScope, limit[ipScope]})
	}
	return out
}

// check returns errThrottled when any of cs is locked now.
func (t *throttle) check(ctx context.Context, now time.Time, cs []counted) error {
	if len(cs) == 0 {
		return nil
	}
	args := []any{now}
	marks := make([]string, 0, len(cs))
	for _, c := range cs {
		args = append(args, c.key)
		marks = append(marks, "$"+strconv.Itoa(len(args)))
	}
	var n int
	err := t.db.QueryRowContext(ctx, `SELECT COUNT(*) FROM auth_throttle WHERE locked_until > $1 AND key IN (`+strings.Join(marks, ", ")+`)`, args...).Scan(&n)
	if err != nil {
		return fmt.Errorf("identity: read throttle: %w", err)
	}
	if n > 0 {
		return errThrottled()
	}
	return nil
}

// hit counts one event against each of cs, starting a new window when the
// last one has passed, and locks a key for one window when it reaches its
// limit. It reports whether any key is now locked. Run it in a
// transaction (q a *sql.Tx) to pay for one commit, not one per statement.
func (t *throttle) hit(ctx context.Context, q store.Q, now time.Time, cs []counted) (bool, error) {
	locked := false
	for _, c := range cs {
		if c.limit <= 0 {
			continue
		}
		// Insert-if-absent, then a conditional update: both engines run
		// this the same way, and the update takes the row lock, so
		// concurrent processes never lose a count.
		if _, err := q.ExecContext(ctx, `INSERT INTO auth_throttle (key, scope, failures, window_start, locked_until, updated_at)
			VALUES ($1, $2, 0, $3, NULL, $3) ON CONFLICT (key) DO NOTHING`, c.key, c.scope, now); err != nil {
			return false, fmt.Errorf("identity: count attempt: %w", err)
		}
		var failures int
		err := q.QueryRowContext(ctx, `UPDATE auth_throttle SET
				failures = CASE WHEN window_start < $2 THEN 1 ELSE failures + 1 END,
				window_start = CASE WHEN window_start < $2 THEN $3 ELSE window_start END,
				locked_until = CASE WHEN (CASE WHEN window_start < $2 THEN 1 ELSE failures + 1 END) >= $4 THEN $5 ELSE locked_until END,
				updated_at = $3
			WHERE key = $1 RETURNING failures`,
			c.key, now.Add(-t.limits.Window), now, c.limit, now.Add(t.limits.Window)).Scan(&failures)
		if err != nil {
			return false, fmt.Errorf("identity: count attempt: %w", err)
		}
		if failures >= c.limit {
			locked = true
		}
	}
	return locked, nil
}

// count checks cs and, when none is locked, counts the attempt, in one
// transaction: sign-up, resend and reset count every attempt.
func (t *throttle) count(ctx context.Context, now time.Time, cs []counted) error {
	if err := t.check(ctx, now, cs); err != nil {
		return err
	}
	return t.db.InTx(ctx, func(tx *sql.Tx) error {
		_, err := t.hit(ctx, tx, now, cs)
		return err
	})
}

// reset forgets the count of one key (after a successful login).
func (t *throttle) reset(ctx context.Context, q store.Q, c counted) error {
	if _, err := q.ExecContext(ctx, `DELETE FROM auth_throttle WHERE key = $1`, c.key); err != nil {
		return fmt.Errorf("identity: reset throttle: %w", err)
	}
	return nil
}

// prune deletes counts whose window and lock have both passed.
func (t *throttle) prune(ctx context.Context, now time.Time) (int64, error) {
	res, err := t.db.ExecContext(ctx, `DELETE FROM auth_throttle WHERE window_start < $1 AND (locked_until IS NULL OR locked_until < $2)`,
		now.Add(-t.limits.Window), now)
	if err != nil {
		return 0, fmt.Errorf("identity: prune throttle: %w", err)
	}
	n, _ := res.RowsAffected()
	return n, nil
}
