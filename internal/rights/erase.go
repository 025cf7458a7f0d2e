package rights

import (
	"context"
	"database/sql"
	"fmt"
	"net/url"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"steward/internal/fault"
	"steward/internal/policy"
	"steward/internal/registry"
	"steward/internal/store"
)

// Scope says what an erasure covers.
type Scope struct {
	Kind policy.ErasureScope `json:"scope"`
	// Fields and Categories name the specific information of a category
	// scope: every column holding one of the fields, or a field of one of
	// the categories.
	Fields     []string `json:"fields,omitempty"`
	Categories []string `json:"categories,omitempty"`
	// Items name single records of an item scope ("dataset/key"), as the
	// access report lists them.
	Items []string `json:"items,omitempty"`
	// UnderAge marks the erasure of a member found to be under the
	// policy's minimum age (J26): the archive exemption is not applied.
	UnderAge bool `json:"under_age,omitempty"`
}

// contentFields are the fields of what a subject posts (scope content).
var contentFields = []string{"comment", "post", "photo", "video"}

// covers reports whether a category scope covers a column.
func (sc Scope) covers(c registry.Column, category string) bool {
	if c.Field != "" && slices.Contains(sc.Fields, c.Field) {
		return true
	}
	return category != "" && slices.Contains(sc.Categories, category)
}

// TableOutcome says what an erasure did to one dataset.
type TableOutcome struct {
	Dataset string `json:"dataset"`
	// Erased counts the rows deleted, or the rows whose fields were
	// cleared when only some fields were in scope.
	Erased  int64    `json:"erased"`
	Cleared []string `json:"cleared_fields,omitempty"`
	// Kept counts the rows that stay, Why names the exemption (archive,
	// legal-obligation) and Explanation says it in words.
	Kept        int64  `json:"kept,omitempty"`
	Why         string `json:"why,omitempty"`
	Explanation string `json:"explanation,omitempty"`
}

// Verification is the engine's re-check after an erasure: every registry
// table queried again for what should be gone.
type Verification struct {
	At            time.Time `json:"at"`
	TablesChecked int       `json:"tables_checked"`
	Remaining     []string  `json:"remaining"`
	OK            bool      `json:"ok"`
}

// RecipientRef is a recipient the erased data may have gone to, to be told
// of the erasure (Art. 19).
type RecipientRef struct {
	ID         string   `json:"id"`
	Name       string   `json:"name"`
	Role       string   `json:"role"`
	Country    string   `json:"country"`
	Categories []string `json:"categories"`
	// Basis is "disclosed" for a recipient the register shows received
	// the erased categories, "declared" (without a register) for one the
	// policy declares for them.
	Basis string `json:"basis"`
}

// Outcome is the result of an erasure.
type Outcome struct {
	Scope         Scope          `json:"scope"`
	Erased        []TableOutcome `json:"erased"`
	Kept          []TableOutcome `json:"kept"`
	KeysDestroyed []string       `json:"keys_destroyed"`
	Recipients    []RecipientRef `json:"recipients_to_notify"`
	Verification  *Verification  `json:"verification,omitempty"`
}

type action uint8

const (
	actSkip   action = iota // the scope does not touch the table
	actDelete               // delete the subject's rows
	actClear                // clear some columns of the subject's rows
	actKeep                 // the rows stay, for a stated reason
	actItems                // delete the named rows
	actHolder               // a registered Holder decides
)

// step is what an erasure does to one table.
type step struct {
	t        *liveTable
	act      action
	clear    []liveCol
	items    [][]any
	why      string
	holder   Holder
	deferred bool // account scope: done only after the completion mail left
}

// plan is an erasure worked out table by table.
type plan struct {
	scope   Scope
	ids     []string
	steps   []*step
	destroy []string        // data key categories to destroy
	kept    map[string]bool // sealed categories that must stay readable
	erased  map[string]bool // categories whose data is erased
}

// outboxTable holds mail the completion notice of an erasure travels in;
// an account erasure deletes it only after that notice left.
const outboxTable = "mail_outbox"

// archiveCategories returns the categories whose retention is archive when
// the policy lists the archive exemption, and none for an under-age
// erasure (J26: a child's data is deleted once known, archived or not).
func (s *Service) archiveCategories(sc Scope) map[string]bool {
	out := map[string]bool{}
	if sc.UnderAge || !s.pol.Exempts(policy.ExemptArchive) {
		return out
	}
	for _, c := range s.pol.Categories() {
		if r, ok := s.pol.Retention(c.ID); ok && r.Kind == policy.RetainArchive {
			out[c.ID] = true
		}
	}
	return out
}

// obligedCategories returns the categories the policy keeps for a legal
// obligation, when it lists that exemption: their rows survive every
// erasure, a child's included (the law that obliges it does not ask).
func (s *Service) obligedCategories() map[string]bool {
	out := map[string]bool{}
	if !s.pol.Exempts(policy.ExemptLegalObligation) {
		return out
	}
	for _, c := range s.pol.Categories() {
		if c.LegalObligation != "" {
			out[c.ID] = true
		}
	}
	return out
}

// plan works out what an erasure does to every personal table.
func (s *Service) plan(ctx context.Context, q store.Q, subjectID string, sc Scope) (*plan, error) {
	schema, err := s.loadedSchema(ctx)
	if err != nil {
		return nil, err
	}
	ids, err := s.subjectIDs(ctx, q, subjectID)
	if err != nil {
		return nil, err
	}
	p := &plan{scope: sc, ids: ids, kept: map[string]bool{}, erased: map[string]bool{}}
	archive := s.archiveCategories(sc)
	obliged := s.obligedCategories()
	held, err := s.heldCategories(ctx, q, ids)
	if err != nil {
		return nil, err
	}
	items, err := s.parseItems(schema, sc.Items)
	if err != nil {
		return nil, err
	}
	catOf := s.pol.CategoryOfField
	for _, t := range schema.tables {
		st := &step{t: t}
		p.steps = append(p.steps, st)
		isHeld := heldTable(t.Categories(s.pol.CategoryOfField), held)
		if isHeld && s.holder(t.Name) != nil && sc.Kind != policy.ScopeItem {
			// A legal hold keeps the category: its rows stay, and the
			// subject is told why.
			st.act, st.why = actKeep, string(policy.ExemptLegalHold)
			continue
		}
		if h := s.holder(t.Name); h != nil {
			st.act, st.holder = actHolder, h
			st.deferred = sc.Kind == policy.ScopeAccount && t.Name == "subjects"
			continue
		}
		isArchive, isObliged := false, false
		for _, c := range t.Categories(catOf) {
			isArchive = isArchive || archive[c]
			isObliged = isObliged || obliged[c]
		}
		keep := func() string {
			switch {
			case t.KeptBecause != "":
				return t.KeptBecause
			case isArchive:
				return string(policy.ExemptArchive)
			case isObliged:
				return string(policy.ExemptLegalObligation)
			}
			return ""
		}
		switch sc.Kind {
		case policy.ScopeAccount:
			st.act = actDelete
			st.deferred = t.Name == outboxTable
		case policy.ScopeContent:
			for _, c := range t.cols {
				if slices.Contains(contentFields, c.Field) {
					st.act = actDelete
				}
			}
		case policy.ScopeItem:
			if list := items[t.Name]; len(list) > 0 {
				st.act, st.items = actItems, list
			}
		case policy.ScopeCategory:
			personal := 0
			for _, c := range t.cols {
				if !c.Personal() {
					continue
				}
				personal++
				if sc.covers(c.Column, c.CategoryIn(catOf)) {
					st.clear = append(st.clear, c)
				}
			}
			switch {
			case len(st.clear) == 0:
			case len(st.clear) == personal || !clearable(st.clear):
				// Nothing personal would be left in the rows (or a field
				// cannot be emptied in place): the rows go.
				st.act, st.clear = actDelete, nil
			default:
				st.act = actClear
			}
		}
		if st.act != actSkip && isHeld {
			st.act, st.why, st.clear = actKeep, string(policy.ExemptLegalHold), nil
		}
		if st.act != actSkip {
			if why := keep(); why != "" {
				st.act, st.why, st.clear = actKeep, why, nil
			}
		}
	}
	// Destroy a data key only when every sealed column of its category is
	// erased for this subject: a key still sealing kept data stays.
	for _, st := range p.steps {
		for _, c := range st.t.cols {
			cat := c.CategoryIn(catOf)
			if cat == "" || !c.Personal() {
				continue
			}
			erased := false
			switch st.act {
			case actDelete:
				erased = true
			case actClear:
				erased = slices.ContainsFunc(st.clear, func(x liveCol) bool { return x.Name == c.Name })
			case actHolder:
				// A holder empties what the scope covers (verify asks it
				// what is left).
				erased = sc.Kind == policy.ScopeAccount || sc.covers(c.Column, cat)
			}
			if erased {
				p.erased[cat] = true
			}
			if c.Sensitive {
				if erased {
					if _, ok := p.kept[cat]; !ok {
						p.kept[cat] = false
					}
				} else {
					p.kept[cat] = true
				}
			}
		}
	}
	for cat, kept := range p.kept {
		if !kept && p.erased[cat] {
			p.destroy = append(p.destroy, cat)
		}
	}
	sort.Strings(p.destroy)
	return p, nil
}

// heldTable reports whether a table holds a category a legal hold keeps.
func heldTable(cats []string, held map[string]bool) bool {
	for _, c := range cats {
		if held[c] {
			return true
		}
	}
	return false
}

// clearable reports whether every column can be emptied in place: NULL
// where allowed, else the type's empty value; a NOT NULL instant cannot.
func clearable(cols []liveCol) bool {
	for _, c := range cols {
		if c.notNull && c.kind == kindTime {
			return false
		}
	}
	return true
}

func emptyValue(c liveCol) any {
	if !c.notNull {
		return nil
	}
	switch c.kind {
	case kindInt, kindFloat:
		return 0
	case kindBool:
		return false
	case kindBytes:
		return []byte{}
	}
	return ""
}

// notEmpty is the SQL predicate "this column still holds something".
func notEmpty(c liveCol) string {
	n := quoteIdent(c.Name)
	switch c.kind {
	case kindText:
		return "(" + n + " IS NOT NULL AND " + n + " <> '')"
	case kindInt, kindFloat:
		return "(" + n + " IS NOT NULL AND " + n + " <> 0)"
	case kindBool:
		return "(" + n + " IS NOT NULL AND " + n + " = TRUE)"
	case kindBytes:
		return "(" + n + " IS NOT NULL AND length(" + n + ") > 0)"
	}
	return n + " IS NOT NULL"
}

// itemRef names one row: its dataset and primary key, each part escaped.
// It runs for every exported row, so the common keys (integers, ids of
// letters, digits, '_' and '-') skip the escaping.
func itemRef(t *liveTable, raw []any) string {
	b := make([]byte, 0, len(t.Dataset)+32)
	b = append(b, t.Dataset...)
	for _, i := range t.pkIdx {
		b = append(b, '/')
		switch v := raw[i].(type) {
		case int64:
			b = strconv.AppendInt(b, v, 10)
		default:
			s := textOf(v)
			if plainKey(s) {
				b = append(b, s...)
			} else {
				b = append(b, url.PathEscape(s)...)
			}
		}
	}
	return string(b)
}

func plainKey(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}

// itemTablesRefused are tables whose rows are the subject itself or the
// engine's own records: erasing one alone makes no sense.
func itemRefused(t *liveTable, h Holder) bool {
	if h != nil {
		return true
	}
	return len(t.pk) == 1 && t.pk[0] == t.SubjectColumn
}

// parseItems resolves item references to tables and key values.
func (s *Service) parseItems(sc *schema, refs []string) (map[string][][]any, error) {
	out := map[string][][]any{}
	for _, ref := range refs {
		t, key, err := s.parseItem(sc, ref)
		if err != nil {
			return nil, err
		}
		out[t.Name] = append(out[t.Name], key)
	}
	return out, nil
}

func (s *Service) parseItem(sc *schema, ref string) (*liveTable, []any, error) {
	bad := func() error {
		return fault.FieldError("items", "%q is not an item of the access report (dataset/key)", truncate(ref, 80))
	}
	parts := strings.Split(ref, "/")
	if len(parts) < 2 {
		return nil, nil, bad()
	}
	t := sc.byDataset[parts[0]]
	if t == nil || len(parts)-1 != len(t.pk) {
		return nil, nil, bad()
	}
	if itemRefused(t, s.holder(t.Name)) {
		return nil, nil, fault.FieldError("items", "records of %s cannot be erased one by one: ask for the erasure of your account", t.Dataset)
	}
	key := make([]any, len(t.pk))
	for i, p := range t.pk {
		v, err := url.PathUnescape(parts[i+1])
		if err != nil {
			return nil, nil, bad()
		}
		c, _ := t.col(p)
		if c.kind == kindInt {
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil {
				return nil, nil, bad()
			}
			key[i] = n
		} else {
			key[i] = v
		}
	}
	return t, key, nil
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}

// keyWhere is "pk1 = $a AND pk2 = $b" numbered from first.
func keyWhere(t *liveTable, first int) string {
	parts := make([]string, len(t.pk))
	for i, p := range t.pk {
		parts[i] = fmt.Sprintf("%s = $%d", quoteIdent(p), first+i)
	}
	return strings.Join(parts, " AND ")
}

func subjectWhere(t *liveTable, ids []string, first int) string {
	return quoteIdent(t.SubjectColumn) + " IN (" + placeholders(first, len(ids)) + ")"
}

// ownsItems reports whether every item belongs to the subject: one
// subject never learns whether another's record exists.
func (s *Service) ownsItems(ctx context.Context, q store.Q, subjectID string, refs []string) error {
	sc, err := s.loadedSchema(ctx)
	if err != nil {
		return err
	}
	ids, err := s.subjectIDs(ctx, q, subjectID)
	if err != nil {
		return err
	}
	for _, ref := range refs {
		t, key, err := s.parseItem(sc, ref)
		if err != nil {
			return err
		}
		var n int
		args := append(key, anyArgs(ids)...)
		if err := q.QueryRowContext(ctx, `SELECT COUNT(*) FROM `+quoteIdent(t.Name)+` WHERE `+keyWhere(t, 1)+` AND `+
			subjectWhere(t, ids, len(key)+1), args...).Scan(&n); err != nil {
			return fmt.Errorf("rights: check item: %w", err)
		}
		if n == 0 {
			return &fault.Error{Code: fault.NotFound, Field: "items", Message: "no such record of yours: " + truncate(ref, 80)}
		}
	}
	return nil
}

// errLegalHold refuses an erasure while a legal hold is in force.
type errLegalHold struct{ reason string }

func (e *errLegalHold) Error() string { return "rights: a legal hold is in force: " + e.reason }

// runSteps applies the steps, each in its own transaction: a crash leaves
// the finished tables erased and the rest for the re-run. Without
// deferredToo the steps an account erasure does last are left out; with
// it every step runs again (they are idempotent), which also catches rows
// written since the first phase.
func (s *Service) runSteps(ctx context.Context, p *plan, deferredToo bool, out *Outcome) error {
	for _, st := range p.steps {
		if st.deferred && !deferredToo {
			continue
		}
		var to TableOutcome
		err := s.inTx(ctx, func(tx *sql.Tx) error {
			var err error
			to, err = s.applyStep(ctx, tx, p, st)
			return err
		})
		if err != nil && st.act == actClear {
			// A constraint refused the emptied value: delete the rows
			// instead, which erases at least as much.
			s.log.Warn("rights: clearing fields failed; deleting the rows", "table", st.t.Name, "error", err.Error())
			st.act, st.clear = actDelete, nil
			err = s.inTx(ctx, func(tx *sql.Tx) error {
				var err error
				to, err = s.applyStep(ctx, tx, p, st)
				return err
			})
		}
		if err != nil {
			return err
		}
		if to.Dataset == "" {
			continue
		}
		if to.Erased > 0 || len(to.Cleared) > 0 {
			out.Erased = append(out.Erased, to)
		}
		if to.Kept > 0 {
			out.Kept = append(out.Kept, to)
		}
	}
	return nil
}

func (s *Service) applyStep(ctx context.Context, tx *sql.Tx, p *plan, st *step) (TableOutcome, error) {
	t := st.t
	to := TableOutcome{Dataset: t.Dataset}
	args := anyArgs(p.ids)
	where := subjectWhere(t, p.ids, 1)
	exec := func(query string, a ...any) (int64, error) {
		res, err := tx.ExecContext(ctx, query, a...)
		if err != nil {
			return 0, fmt.Errorf("rights: erase %s: %w", t.Name, err)
		}
		n, _ := res.RowsAffected()
		return n, nil
	}
	switch st.act {
	case actSkip:
		return TableOutcome{}, nil
	case actHolder:
		o, err := st.holder.Erase(ctx, tx, t.Table, p.ids, p.scope)
		if o.Kept > 0 && o.Why != "" && o.Explanation == "" {
			o.Explanation = s.explain(o.Why, t)
		}
		return o, err
	case actDelete:
		n, err := exec(`DELETE FROM `+quoteIdent(t.Name)+` WHERE `+where, args...)
		to.Erased = n
		return to, err
	case actClear:
		sets := make([]string, len(st.clear))
		vals := make([]any, 0, len(st.clear)+len(args))
		for i, c := range st.clear {
			vals = append(vals, emptyValue(c))
			sets[i] = fmt.Sprintf("%s = $%d", quoteIdent(c.Name), i+1)
			to.Cleared = append(to.Cleared, c.Name)
		}
		vals = append(vals, args...)
		n, err := exec(`UPDATE `+quoteIdent(t.Name)+` SET `+strings.Join(sets, ", ")+` WHERE `+subjectWhere(t, p.ids, len(st.clear)+1), vals...)
		to.Erased = n
		return to, err
	case actItems:
		for _, key := range st.items {
			n, err := exec(`DELETE FROM `+quoteIdent(t.Name)+` WHERE `+keyWhere(t, 1)+` AND `+subjectWhere(t, p.ids, len(key)+1),
				append(append([]any{}, key...), args...)...)
			if err != nil {
				return to, err
			}
			to.Erased += n
		}
		return to, nil
	case actKeep:
		var n int64
		if st.items != nil {
			n = int64(len(st.items))
		} else if err := tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM `+quoteIdent(t.Name)+` WHERE `+where, args...).Scan(&n); err != nil {
			return to, fmt.Errorf("rights: erase %s: %w", t.Name, err)
		}
		to.Kept, to.Why, to.Explanation = n, st.why, s.explain(st.why, t)
		return to, nil
	}
	return to, nil
}

// explain says in words why rows survive an erasure.
func (s *Service) explain(why string, t *liveTable) string {
	switch why {
	case string(policy.ExemptArchive):
		var cats []string
		for _, c := range t.Categories(s.pol.CategoryOfField) {
			if pc := s.pol.Category(c); pc != nil && pc.Retention.Kind == policy.RetainArchive {
				cats = append(cats, pc.Description)
			}
		}
		return "Kept for archiving in the public interest (GDPR Art. 89), as the privacy policy states: " + strings.Join(cats, " ")
	case string(policy.ExemptLegalObligation):
		var words []string
		for _, c := range t.Categories(s.pol.CategoryOfField) {
			if pc := s.pol.Category(c); pc != nil && pc.LegalObligation != "" {
				words = append(words, pc.LegalObligation)
			}
		}
		if len(words) > 0 {
			return "Kept because the law obliges us to keep it (GDPR Art. 17(3)(b)), as the privacy policy states: " + strings.Join(words, " ")
		}
		return "Kept because the law obliges us to keep this record (GDPR Art. 17(3)(b)); it names you only by a pseudonymous id. " + t.Description
	case string(policy.ExemptLegalHold):
		return "Kept while a legal hold is in force."
	}
	return "Kept: " + why
}

// destroyKeys destroys the plan's data keys and, for an account, every
// other live key of the subject except those still sealing kept data.
func (s *Service) destroyKeys(ctx context.Context, p *plan) ([]string, error) {
	destroy := append([]string{exportKeyCategory}, p.destroy...)
	if p.scope.Kind == policy.ScopeAccount {
		for _, id := range p.ids {
			live, err := s.door.LiveCategories(ctx, s.db, id)
			if err != nil {
				return nil, fmt.Errorf("rights: list data keys: %w", err)
			}
			for _, c := range live {
				if !p.kept[c] {
					destroy = append(destroy, c)
				}
			}
		}
	}
	sort.Strings(destroy)
	destroy = slices.Compact(destroy)
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		for _, id := range p.ids {
			for _, c := range destroy {
				if _, err := s.door.Shred(ctx, tx, id, c); err != nil {
					return fmt.Errorf("rights: destroy key %s: %w", c, err)
				}
			}
		}
		return nil
	})
	var out []string
	for _, c := range destroy {
		if c != exportKeyCategory {
			out = append(out, c)
		}
	}
	if out == nil {
		out = []string{}
	}
	return out, err
}

// verify queries every table of the plan again and reports what should be
// gone but is not. deferredToo includes the steps an account erasure does
// last.
func (s *Service) verify(ctx context.Context, p *plan, deferredToo bool, destroyed []string) (*Verification, error) {
	v := &Verification{At: s.clock.Now(), Remaining: []string{}}
	args := anyArgs(p.ids)
	count := func(query string, a ...any) (int, error) {
		var n int
		err := s.db.QueryRowContext(ctx, query, a...).Scan(&n)
		return n, err
	}
	for _, st := range p.steps {
		if st.deferred && !deferredToo {
			continue
		}
		v.TablesChecked++
		t := st.t
		where := subjectWhere(t, p.ids, 1)
		var left int
		var err error
		switch st.act {
		case actHolder:
			left, err = st.holder.Left(ctx, s.db, t.Table, p.ids, p.scope)
		case actDelete:
			left, err = count(`SELECT COUNT(*) FROM `+quoteIdent(t.Name)+` WHERE `+where, args...)
		case actClear:
			preds := make([]string, len(st.clear))
			for i, c := range st.clear {
				preds[i] = notEmpty(c)
			}
			left, err = count(`SELECT COUNT(*) FROM `+quoteIdent(t.Name)+` WHERE `+where+` AND (`+strings.Join(preds, " OR ")+`)`, args...)
		case actItems:
			for _, key := range st.items {
				var n int
				n, err = count(`SELECT COUNT(*) FROM `+quoteIdent(t.Name)+` WHERE `+keyWhere(t, 1)+` AND `+subjectWhere(t, p.ids, len(key)+1),
					append(append([]any{}, key...), args...)...)
				if err != nil {
					break
				}
				left += n
			}
		}
		if err != nil {
			return nil, fmt.Errorf("rights: verify %s: %w", t.Name, err)
		}
		if left > 0 {
			v.Remaining = append(v.Remaining, fmt.Sprintf("%s: %d", t.Dataset, left))
		}
	}
	for _, id := range p.ids {
		for _, c := range destroyed {
			ok, err := s.door.Shredded(ctx, s.db, id, c)
			if err != nil {
				return nil, fmt.Errorf("rights: verify key %s: %w", c, err)
			}
			if !ok {
				v.Remaining = append(v.Remaining, "data key: "+c)
			}
		}
	}
	v.OK = len(v.Remaining) == 0
	return v, nil
}

// recipientsFor lists the declared recipients of the erased categories.
func (s *Service) recipientsFor(cats map[string]bool) []RecipientRef {
	out := []RecipientRef{}
	for _, r := range s.pol.Recipients {
		var hit []string
		for _, c := range r.Categories {
			if cats[c] {
				hit = append(hit, c)
			}
		}
		if len(hit) == 0 {
			continue
		}
		out = append(out, RecipientRef{ID: r.ID, Name: r.Name, Role: string(r.Role), Country: r.Country, Categories: hit, Basis: "declared"})
	}
	return out
}

// erase runs an erasure for the subject, or the first phase of an account
// erasure (everything but the outbox and the address) when phase is 1.
// Phase 2 finishes an account erasure. Other scopes run whole with phase
// 0. It returns the outcome with its verification; a verification that
// finds data left is an error, so the job retries.
// ignoreHold is for reapply, which repeats erasures already decided.
func (s *Service) erase(ctx context.Context, subjectID string, sc Scope, phase int, ignoreHold bool) (*Outcome, error) {
	hold, reason, err := s.subjects.LegalHold(ctx, s.db, subjectID)
	if err != nil {
		return nil, err
	}
	if hold && !ignoreHold {
		return nil, &errLegalHold{reason: reason}
	}
	p, err := s.plan(ctx, s.db, subjectID, sc)
	if err != nil {
		return nil, err
	}
	out := &Outcome{Scope: sc, Erased: []TableOutcome{}, Kept: []TableOutcome{}, KeysDestroyed: []string{}}
	// Who received the data, read before the erasure unlinks the register.
	var received []Received
	if reg := s.register(); reg != nil {
		if received, err = reg.Received(ctx, s.db, p.ids); err != nil {
			return nil, err
		}
	}
	if err := s.runSteps(ctx, p, phase != 1, out); err != nil {
		return nil, err
	}
	var destroyed []string
	if phase != 1 {
		if destroyed, err = s.destroyKeys(ctx, p); err != nil {
			return nil, err
		}
		out.KeysDestroyed = destroyed
	}
	out.Recipients = s.recipientsFor(p.erased)
	if s.register() != nil {
		out.Recipients = s.disclosedTo(received, p.erased)
	}
	v, err := s.verify(ctx, p, phase != 1, destroyed)
	if err != nil {
		return nil, err
	}
	out.Verification = v
	if !v.OK {
		return out, fmt.Errorf("rights: erasure of %s left data behind: %s", subjectID, strings.Join(v.Remaining, "; "))
	}
	if phase != 1 {
		// SQLite zeroed the deleted rows in the pages it wrote to its
		// write-ahead log, but the database file and the log's earlier
		// frames hold the pages as they were until the log is
		// checkpointed and truncated. The erasure stands without this,
		// so a failure is only logged.
		if err := s.db.Checkpoint(ctx); err != nil {
			s.log.Warn("rights: write-ahead log not truncated after an erasure", "error", err.Error())
		}
	}
	return out, nil
}

// TableCoverage says how the engine exports and erases one personal table.
type TableCoverage struct {
	Table   string `json:"table"`
	Dataset string `json:"dataset"`
	// Export is "generic" or "exporter" (a registered Exporter).
	Export string `json:"export"`
	// Erasure is what an account erasure does: "delete", "delete (after
	// the completion notice)", "holder" (a registered Holder) or
	// "kept: <reason>".
	Erasure string `json:"erasure"`
}

// Coverage lists how every personal table of the registry is exported and
// erased, so a test (and an operator) can see that none is skipped.
func (s *Service) Coverage(ctx context.Context) ([]TableCoverage, error) {
	p, err := s.plan(ctx, s.db, "s_coverage", Scope{Kind: policy.ScopeAccount})
	if err != nil {
		return nil, err
	}
	var out []TableCoverage
	for _, st := range p.steps {
		c := TableCoverage{Table: st.t.Name, Dataset: st.t.Dataset, Export: "generic"}
		if h := s.holder(st.t.Name); h != nil {
			if _, ok := h.(Exporter); ok {
				c.Export = "exporter"
			}
		}
		switch st.act {
		case actDelete:
			c.Erasure = "delete"
			if st.deferred {
				c.Erasure = "delete (after the completion notice)"
			}
		case actKeep:
			c.Erasure = "kept: " + st.why
		case actHolder:
			c.Erasure = "holder"
			if st.t.KeptBecause != "" {
				c.Erasure += " (record kept: " + st.t.KeptBecause + ")"
			}
		default:
			c.Erasure = "skipped"
		}
		out = append(out, c)
	}
	return out, nil
}

// Keeps says what an erasure of the whole account would keep for the
// subject now, and why, for the privacy centre to state before anyone
// asks.
func (s *Service) Keeps(ctx context.Context, subjectID string) ([]TableOutcome, error) {
	p, err := s.plan(ctx, s.db, subjectID, Scope{Kind: policy.ScopeAccount})
	if err != nil {
		return nil, err
	}
	out := []TableOutcome{}
	for _, st := range p.steps {
		c, _, err := s.count(ctx, s.db, st.t, p.ids)
		if err != nil {
			return nil, fmt.Errorf("rights: keeps: %w", err)
		}
		n := int64(c)
		if n == 0 {
			continue
		}
		switch {
		case st.act == actKeep:
			out = append(out, TableOutcome{Dataset: st.t.Dataset, Kept: n, Why: st.why, Explanation: s.explain(st.why, st.t)})
		case st.act == actHolder && st.t.KeptBecause != "":
			explanation := s.explain(st.t.KeptBecause, st.t)
			if _, ok := st.holder.(requestsHolder); ok {
				explanation = "The record that each of your requests was received and answered is kept (GDPR Art. 5(2)); what you wrote in them is erased."
			}
			out = append(out, TableOutcome{Dataset: st.t.Dataset, Kept: n, Why: st.t.KeptBecause, Explanation: explanation})
		}
	}
	return out, nil
}
