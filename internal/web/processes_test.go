package web_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"steward/internal/app"
	"steward/internal/consent"
	"steward/internal/mail/mailtest"
	"steward/internal/newsletter"
	"steward/internal/store/storetest"
)

// TestThreeProcessesOnOnePostgres runs three `steward serve` processes on
// one PostgreSQL database (children of the test, driven in turn) under
// collection load, sign-ups and a campaign at once, and kills the one
// delivering the campaign with SIGKILL while the mail server holds its
// answer to a message it already accepted (the window in which a sender
// that dies sends a message again). Then:
//
//   - every event acknowledged with 202, by any process, is stored exactly
//     once (the survivors adopt the dead writer's batches);
//   - no mail is lost: every subscriber gets the campaign and every
//     sign-up its verification, a message repeated only in the kill's
//     window and then with its Message-ID (at most once per job worker of
//     the dead process), never a third copy;
//   - a survivor takes the campaign over within 30 seconds;
//   - each periodic job has one instance, not one per process;
//   - the subscription limit is one for the three processes.
//
// It also reports collection throughput of three processes against one:
// on two cores that measures contention, not scaling.
func TestThreeProcessesOnOnePostgres(t *testing.T) {
	dbURL := storetest.PostgresURL(t)
	smtp := mailtest.Start(t)
	dir := t.TempDir()
	pol := policyWithOrigins(t, "jmir.yaml", loadOrigin)
	env := []string{"CHILD_DATA_DIR=" + dir, "CHILD_DATABASE_URL=" + dbURL, "CHILD_POLICY=" + pol, "CHILD_SMTP_URL=" + smtp.URL()}
	procs := []*child{startChild(t, "steward", env...)} // the first makes the development key the others read
	procs = append(procs, startChild(t, "steward", env...), startChild(t, "steward", env...))
	ctx := context.Background()
	// The test's own view of the database (it runs no jobs: the children
	// deliver everything).
	a, err := app.Open(ctx, app.Config{DataDir: dir, DatabaseURL: dbURL, PolicyPath: pol, Dev: true, SMTPURL: smtp.URL(), BaseURL: "http://steward.test",
		MailFrom: "Steward <steward@example.org>"}, func(string) string { return "" }, slog.New(slog.DiscardHandler), app.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()

	// Throughput: one process, then three, with the same 48 clients.
	one := drive(procs[0].url, 48, 3*time.Second, nil)
	var wg sync.WaitGroup
	three := make([]*result, 3)
	for i, p := range procs {
		wg.Add(1)
		go func() { defer wg.Done(); three[i] = drive(p.url, 16, 3*time.Second, nil) }()
	}
	wg.Wait()
	all := &result{}
	for _, r := range three {
		all.requests += r.requests
		all.seconds = max(all.seconds, r.seconds)
	}
	t.Logf("collect with the Go client, 48 clients: one process %.0f req/s, three processes %.0f req/s (%.2f×; two cores: contention, not scaling)",
		one.rate(), all.rate(), all.rate()/one.rate())

	// The subscription limit is shared: 12 requests from one network
	// spread over the three processes, 5 allowed.
	allowed := 0
	for i := range 12 {
		code := post(t, procs[i%3].url+"/api/v1/newsletters/newsletter/subscriptions", map[string]string{"email": fmt.Sprintf("flood%d@example.org", i)}, "198.51.100.7")
		switch code {
		case http.StatusAccepted:
			allowed++
		case http.StatusTooManyRequests:
		default:
			t.Fatalf("subscription %d: %d", i, code)
		}
	}
	if allowed != 5 {
		t.Errorf("12 subscriptions from one network over three processes: %d allowed, want 5", allowed)
	}

	// Twenty confirmed subscribers for the campaign.
	const subscribers = 20
	for i := range subscribers {
		if _, err := a.Newsletters.Subscribe(ctx, newsletter.SubscribeInput{List: "newsletter", Email: fmt.Sprintf("reader%d@example.org", i),
			Method: consent.MethodForm, Evidence: consent.Evidence{Network: fmt.Sprintf("10.%d.0.0/24", i)}}); err != nil {
			t.Fatal(err)
		}
	}
	for i := range subscribers {
		to := fmt.Sprintf("reader%d@example.org", i)
		m := smtp.WaitFor(t, mailtest.SentTo(to), 60*time.Second)
		link := m.Link("http")
		tok := link[strings.Index(link, "token=")+len("token="):]
		if err := a.Newsletters.Confirm(ctx, tok, consent.Evidence{}); err != nil {
			t.Fatalf("confirm %s: %v", to, err)
		}
	}

	// Chaos: load and sign-ups on all three, a campaign, a kill.
	const subject = "Three processes, one campaign"
	held := smtp.HoldNth(func(r mailtest.Received) bool { return r.Subject == subject }, 8, 6*time.Second)
	var mu sync.Mutex
	acked := map[string]bool{}
	mark := func(page string) { mu.Lock(); acked[page] = true; mu.Unlock() }
	for i, p := range procs {
		wg.Add(1)
		go func() { defer wg.Done(); driveMarked(p.url, 8, 15*time.Second, fmt.Sprintf("/mp/%d", i), mark) }()
	}
	stop := make(chan struct{})
	signedUp := map[string]bool{}
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			case <-time.After(150 * time.Millisecond):
			}
			email := fmt.Sprintf("joiner%d@example.org", i)
			p := procs[i%3]
			if p.cmd.ProcessState != nil {
				continue // the dead one
			}
			body := map[string]any{"name": "Joiner " + strconv.Itoa(i), "email": email, "password": "correct horse battery staple lantern", "age_confirmed": true}
			if post(t, p.url+"/api/v1/accounts", body, fmt.Sprintf("172.16.%d.9", i%250)) == http.StatusAccepted {
				mu.Lock()
				signedUp[email] = true
				mu.Unlock()
			}
		}
	}()
	time.Sleep(time.Second)
	if _, err := a.Newsletters.CreateCampaign(ctx, "staff-test", "newsletter", newsletter.CampaignInput{Subject: subject, Text: "Hello from three processes."}); err != nil {
		t.Fatal(err)
	}
	var victim *child
	var killedAt time.Time
	var heldID string
	select {
	case m := <-held:
		var owner string
		heldID = m.Header.Get("Message-Id")
		id := strings.Trim(heldID, "<>")
		if err := a.DB.QueryRowContext(ctx, `SELECT COALESCE(claim_owner, '') FROM mail_outbox WHERE message_id IN ($1, $2)`, id, "<"+id+">").Scan(&owner); err != nil {
			t.Fatalf("the held message's claim: %v", err)
		}
		f := strings.Split(owner, ":")
		if len(f) < 2 {
			t.Fatalf("claim owner %q", owner)
		}
		pid, _ := strconv.Atoi(f[1])
		for _, p := range procs {
			if p.cmd.Process.Pid == pid {
				victim = p
			}
		}
		if victim == nil {
			t.Fatalf("the held message is claimed by pid %d, not a child", pid)
		}
		victim.kill() // SIGKILL while the mail server has accepted but not answered
		killedAt = time.Now()
	case <-time.After(60 * time.Second):
		t.Fatal("the campaign's eighth message never reached the mail server")
	}

	// The campaign reaches everyone, and the message in flight at the
	// kill is sent again by a survivor (its Message-ID unchanged) once its
	// claim lapses: the whole campaign taken over within 30 seconds.
	var takeover, resent time.Duration
	deadline := time.Now().Add(90 * time.Second)
	for {
		got := map[string]bool{}
		first, again := time.Time{}, time.Time{}
		for _, m := range smtp.Messages() {
			if m.Subject != subject {
				continue
			}
			got[m.To[0]] = true
			if m.At.After(killedAt) && (first.IsZero() || m.At.Before(first)) {
				first = m.At
			}
			if m.Header.Get("Message-Id") == heldID && m.At.After(killedAt) {
				again = m.At
			}
		}
		if len(got) == subscribers && !first.IsZero() && !again.IsZero() {
			takeover, resent = first.Sub(killedAt), again.Sub(killedAt)
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("90 s after the kill the campaign reached %d of %d subscribers; the message in flight sent again: %v", len(got), subscribers, !again.IsZero())
		}
		time.Sleep(200 * time.Millisecond)
	}
	if takeover > 30*time.Second || resent > 30*time.Second {
		t.Errorf("after the kill a survivor went on with the campaign in %v and sent the message in flight again in %v; want both within 30 s",
			takeover.Round(time.Second), resent.Round(time.Second))
	}
	close(stop)
	wg.Wait()

	// Every sign-up's verification arrived.
	mu.Lock()
	defer mu.Unlock()
	if len(signedUp) < 10 {
		t.Fatalf("only %d sign-ups went through; the test proves little", len(signedUp))
	}
	for email := range signedUp {
		smtp.WaitFor(t, mailtest.SentTo(email), 60*time.Second)
	}
	// No third copy of anything; a second only in the kill's window.
	copies := map[string]int{}
	for _, m := range smtp.Messages() {
		copies[m.Header.Get("Message-Id")]++
	}

	repeated := 0
	for id, n := range copies {
		if n > 2 {
			t.Errorf("message %s delivered %d times", id, n)
		}
		if n == 2 {
			repeated++
		}
	}
	if repeated > 2 {
		t.Errorf("%d messages delivered twice; only those in flight at the kill (at most one per job worker) may be", repeated)
	}

	// Every acknowledged event stored once (the survivors adopt the dead
	// writer's batches within seconds).
	var lost, twice int
	for end := time.Now().Add(30 * time.Second); ; time.Sleep(500 * time.Millisecond) {
		stored := map[string]int{}
		rows, err := a.DB.QueryContext(ctx, `SELECT page, COUNT(*) FROM activity_events WHERE page LIKE '/mp/%' GROUP BY page`)
		if err != nil {
			t.Fatal(err)
		}
		for rows.Next() {
			var p string
			var n int
			rows.Scan(&p, &n)
			stored[p] = n
		}
		rows.Close()
		lost, twice = 0, 0
		for p := range acked {
			if stored[p] == 0 {
				lost++
			}
		}
		for _, n := range stored {
			if n > 1 {
				twice++
			}
		}
		if lost == 0 || time.Now().After(end) {
			break
		}
	}
	if len(acked) < 100 || lost > 0 || twice > 0 {
		t.Errorf("%d events acknowledged: %d lost, %d stored more than once", len(acked), lost, twice)
	}

	// One instance of each periodic job.
	rows, err := a.DB.QueryContext(ctx, `SELECT dedupe_key, COUNT(*) FROM jobs WHERE dedupe_key LIKE 'every:%' AND status IN ('pending', 'running')
		GROUP BY dedupe_key HAVING COUNT(*) > 1`)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var k string
		var n int
		rows.Scan(&k, &n)
		t.Errorf("periodic job %s has %d instances", k, n)
	}
	rows.Close()
	t.Logf("three processes: %d events acknowledged, none lost or doubled; %d sign-ups mailed; after the SIGKILL the campaign went on in %v and the message in flight was sent again in %v; %d message(s) repeated in the kill's window",
		len(acked), len(signedUp), takeover.Round(100*time.Millisecond), resent.Round(100*time.Millisecond), repeated)
}

// post sends a JSON body with a client address (the children trust
// loopback proxies) and returns the status.
func post(t *testing.T, url string, body any, clientIP string) int {
	t.Helper()
	b, _ := json.Marshal(body)
	req, _ := http.NewRequest("POST", url, bytes.NewReader(b))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-Forwarded-For", clientIP)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0
	}
	res.Body.Close()
	return res.StatusCode
}
