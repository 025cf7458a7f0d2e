package mail_test

import (
	"context"
	"database/sql"
	"fmt"
	"testing"
	"time"

	"steward/internal/fault"
	"steward/internal/mail"
	"steward/internal/mail/mailtest"
	"steward/internal/store"
	"steward/internal/store/storetest"
)

// testBulk is a bulk send over subjects sub_0 … sub_{n-1}: every third is
// skipped by the owner, sub_4 has an address the outbox refuses, and sub_5
// is read but outside the audience.
type testBulk struct {
	n     int
	table mail.DeliveryTable
	eng   store.Engine
}

func (b testBulk) Next(ctx context.Context, tx *sql.Tx, after string, limit int) (mail.Page, error) {
	var page mail.Page
	read := 0
	for i := range b.n {
		id := fmt.Sprintf("sub_%d", i)
		if id <= after || read == limit {
			continue
		}
		read++
		page.Last = id
		switch {
		case i == 5:
			continue
		case i%3 == 0:
			page.Recipients = append(page.Recipients, mail.Recipient{SubjectID: id, Skip: "objected"})
			continue
		}
		m := campaignMsg(i, "bulk")
		if i == 4 {
			m.To = "not an address"
		}
		page.Recipients = append(page.Recipients, mail.Recipient{SubjectID: id, Message: m})
	}
	page.Full = read == limit
	return page, nil
}

func (b testBulk) Record(ctx context.Context, tx *sql.Tx, ds []mail.Delivery, now time.Time) error {
	return b.table.Record(ctx, tx, b.eng, "bulk", ds, now)
}

// TestSendBatch: a batch reads after the cursor, queues the usable mail as
// one outbox batch (one delivery job), records every recipient — skipped
// with the owner's reason, or because the outbox refused the address —
// and says where the next batch starts; running a batch again keeps the
// first records.
func TestSendBatch(t *testing.T) {
	t.Parallel()
	storetest.Each(t, mods(), func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		srv := mailtest.Start(t)
		e := newEnv(t, db, mail.Config{SMTPURL: srv.URL()}, quiet())
		if _, err := db.ExecContext(ctx, `CREATE TABLE test_deliveries (send_id TEXT NOT NULL, subject_id TEXT NOT NULL, status TEXT NOT NULL,
			reason TEXT NOT NULL, outbox_id TEXT NOT NULL, created_at TIMESTAMP NOT NULL, PRIMARY KEY (send_id, subject_id))`); err != nil {
			t.Fatal(err)
		}
		b := testBulk{n: 8, table: mail.DeliveryTable{Name: "test_deliveries", Key: "send_id"}, eng: db.Engine}
		for i := range b.n {
			seed(t, db, campaignMsg(i, "bulk"))
		}
		run := func(after string) mail.Progress {
			t.Helper()
			var p mail.Progress
			if err := db.InTx(ctx, func(tx *sql.Tx) error {
				var err error
				p, err = e.outbox.SendBatch(ctx, tx, b, after, 6)
				return err
			}); err != nil {
				t.Fatal(err)
			}
			return p
		}
		p := run("")
		// sub_0..sub_5 read: 0 and 3 skipped by the owner, 4 refused, 5 not recorded.
		if p.After != "sub_5" || p.Done || p.Queued != 2 || p.Skipped != 3 {
			t.Fatalf("first batch: %+v, want after sub_5, not done, 2 queued, 3 skipped", p)
		}
		if p2 := run(p.After); p2.After != "sub_7" || !p2.Done || p2.Queued != 1 || p2.Skipped != 1 {
			t.Fatalf("second batch: %+v, want after sub_7, done, 1 queued (sub_7), 1 skipped (sub_6)", p2)
		}
		if p3 := run("sub_7"); p3.After != "sub_7" || !p3.Done || p3.Queued+p3.Skipped != 0 {
			t.Fatalf("batch past the end: %+v", p3)
		}
		// A batch run again (its owner's cursor check normally stops
		// that) keeps the first records.
		run("")
		want := map[string]string{"sub_0": "skipped:objected", "sub_1": "queued:", "sub_2": "queued:", "sub_3": "skipped:objected",
			"sub_4": "skipped:address not usable", "sub_6": "skipped:objected", "sub_7": "queued:"}
		rows, err := db.QueryContext(ctx, `SELECT subject_id, status, reason, outbox_id FROM test_deliveries WHERE send_id = 'bulk'`)
		if err != nil {
			t.Fatal(err)
		}
		defer rows.Close()
		got := map[string]string{}
		for rows.Next() {
			var id, status, reason, outbox string
			if err := rows.Scan(&id, &status, &reason, &outbox); err != nil {
				t.Fatal(err)
			}
			got[id] = status + ":" + reason
			if (status == mail.DeliveryQueued) != (outbox != "") {
				t.Errorf("%s: status %s with outbox id %q", id, status, outbox)
			}
		}
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("records:\n got %v\nwant %v", got, want)
		}
		// The first two runs queued one batch each, the repeat one more.
		if n := countRows(t, db, `SELECT COUNT(*) FROM jobs`); n != 3 {
			t.Errorf("%d delivery jobs, want one per batch that queued mail", n)
		}
	})
}

func TestCheckText(t *testing.T) {
	for _, c := range []struct {
		s         string
		multiline bool
		code      fault.Code
	}{
		{"Hello", false, ""},
		{"Hi\r\nBcc: x", false, fault.Invalid},
		{"Line1\nLine2\tx", true, ""},
		{"bell\a", true, fault.Invalid},
		{"sep\u2028", true, fault.Invalid},
		{"\xff", true, fault.Invalid},
		{"0123456789abcdefghijk", false, fault.TooLarge},
	} {
		err := mail.CheckText("subject", c.s, 20, c.multiline)
		if got := fault.CodeOf(err); (c.code == "" && err != nil) || (c.code != "" && got != c.code) {
			t.Errorf("CheckText(%q, multiline %v) = %v, want code %q", c.s, c.multiline, err, c.code)
		}
	}
}
