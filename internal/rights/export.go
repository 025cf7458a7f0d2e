package rights

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"steward/internal/door"
	"steward/internal/policy"
	"steward/internal/registry"
	"steward/internal/store"
)

// hashedMarker stands in for a one-way hash: the hash means nothing to its
// owner and would only help someone guess the secret behind it.
const hashedMarker = "[stored only as a one-way hash]"

// column is a column as exports describe it.
type column struct {
	Name      string `json:"name"`
	Field     string `json:"field,omitempty"`
	Category  string `json:"category,omitempty"`
	Type      string `json:"type"`
	Sensitive bool   `json:"encrypted,omitempty"`
	Hashed    bool   `json:"hashed,omitempty"`

	idx  int // index in the table's declared columns
	kind colKind
}

// dataset is one table as exports name it: a stable dataset name, never
// the table's, so the export format survives changes of layout.
type dataset struct {
	t           *liveTable
	Name        string   `json:"name"`
	Description string   `json:"description"`
	Origin      string   `json:"origin"`
	Categories  []string `json:"categories"`
	Kept        string   `json:"kept_after_erasure,omitempty"`
	Columns     []column `json:"columns"`
	Count       int      `json:"count"`

	sources map[string]int // rows per source
}

// row is one exported row.
type row struct {
	Item          string
	Source        string
	PolicyVersion int    // 0 when not known
	PVBasis       string // recorded, inferred-from-date, unknown
	Values        []any  // aligned with the dataset's Columns
	Unreadable    []string
}

// inventory counts the subject's rows of every personal table.
type inventory struct {
	subjectID string
	ids       []string // the subject and every id merged into it
	sets      []*dataset
	byName    map[string]*dataset
	views     map[string]*door.View // opened once per subject, for the export
}

func (inv *inventory) held() []*dataset {
	var out []*dataset
	for _, d := range inv.sets {
		if d.Count > 0 {
			out = append(out, d)
		}
	}
	return out
}

// subjectIDs returns the subject and every subject merged into it: rows
// in append-only tables (the audit log) may still name an old id.
func (s *Service) subjectIDs(ctx context.Context, q store.Q, subjectID string) ([]string, error) {
	merged, err := s.subjects.MergedFrom(ctx, q, subjectID)
	if err != nil {
		return nil, err
	}
	return append([]string{subjectID}, merged...), nil
}

// take inventory: one indexed COUNT per personal table.
func (s *Service) inventory(ctx context.Context, q store.Q, subjectID string) (*inventory, error) {
	sc, err := s.loadedSchema(ctx)
	if err != nil {
		return nil, err
	}
	ids, err := s.subjectIDs(ctx, q, subjectID)
	if err != nil {
		return nil, err
	}
	inv := &inventory{subjectID: subjectID, ids: ids, byName: map[string]*dataset{}}
	for _, t := range sc.tables {
		d := s.describeDataset(t)
		counted := false
		if d.Count, counted, err = s.count(ctx, q, t, ids); err != nil {
			return nil, err
		}
		d.sources = map[string]int{}
		if d.Count > 0 && t.SourceColumn != "" && !counted {
			if err := countSources(ctx, q, t, ids, d.sources); err != nil {
				return nil, err
			}
		} else if d.Count > 0 {
			d.sources[t.Source] = d.Count
		}
		inv.sets = append(inv.sets, d)
		inv.byName[t.Name] = d
	}
	return inv, nil
}

// count counts the subjects' rows of t the subject is shown: a holder's
// Counter when it has one (counted), else every row.
func (s *Service) count(ctx context.Context, q store.Q, t *liveTable, ids []string) (n int, counted bool, err error) {
	if c, ok := s.holder(t.Name).(Counter); ok {
		if n, err = c.Count(ctx, q, t.Table, ids); err != nil {
			return 0, true, fmt.Errorf("rights: count %s: %w", t.Name, err)
		}
		return n, true, nil
	}
	if err := q.QueryRowContext(ctx, `SELECT COUNT(*) FROM `+quoteIdent(t.Name)+` WHERE `+subjectWhere(t, ids, 1), anyArgs(ids)...).Scan(&n); err != nil {
		return 0, false, fmt.Errorf("rights: count %s: %w", t.Name, err)
	}
	return n, false, nil
}

func countSources(ctx context.Context, q store.Q, t *liveTable, ids []string, into map[string]int) error {
	src := quoteIdent(t.SourceColumn)
	rows, err := q.QueryContext(ctx, `SELECT `+src+`, COUNT(*) FROM `+quoteIdent(t.Name)+` WHERE `+subjectWhere(t, ids, 1)+` GROUP BY `+src, anyArgs(ids)...)
	if err != nil {
		return fmt.Errorf("rights: count sources of %s: %w", t.Name, err)
	}
	defer rows.Close()
	for rows.Next() {
		var v any
		var n int
		if err := rows.Scan(&v, &n); err != nil {
			return fmt.Errorf("rights: count sources of %s: %w", t.Name, err)
		}
		into[textOf(v)] += n
	}
	return rows.Err()
}

func (s *Service) describeDataset(t *liveTable) *dataset {
	d := &dataset{t: t, Name: t.Dataset, Description: t.Description, Origin: string(t.Origin),
		Categories: t.Categories(s.pol.CategoryOfField), Kept: t.KeptBecause}
	if d.Categories == nil {
		d.Categories = []string{}
	}
	for i, c := range t.cols {
		if c.Legacy {
			continue // always empty once re-sealed; nothing to show
		}
		if c.Name == t.SourceColumn || c.Name == t.PolicyVersionColumn {
			continue // every row shows its source and policy version already
		}
		d.Columns = append(d.Columns, column{Name: c.Shown(), Field: c.Field, Category: c.CategoryIn(s.pol.CategoryOfField),
			Type: c.kind.jsonType(), Sensitive: c.Sensitive, Hashed: c.Hashed, idx: i, kind: c.kind})
	}
	return d
}

// versionAt infers the policy version in force at an instant from the
// publication history, for rows that do not record it.
type versionAt []policy.Version

func (v versionAt) at(t time.Time) int {
	n := 0
	for _, ver := range v {
		if !ver.PublishedAt.After(t) {
			n = ver.Number
		}
	}
	return n
}

func (s *Service) versions(ctx context.Context, q store.Q) (versionAt, error) {
	list, err := policy.List(ctx, q)
	if err != nil {
		return nil, fmt.Errorf("rights: policy versions: %w", err)
	}
	sort.Slice(list, func(i, j int) bool { return list[i].Number < list[j].Number })
	return versionAt(list), nil
}

// walk reads the subject's rows of d and calls fn with each, values
// converted for export (sealed fields opened, hashes masked, times in
// RFC 3339). Rows come in primary-key order.
func (s *Service) walk(ctx context.Context, q store.Q, inv *inventory, d *dataset, vers versionAt, fn func(r *row) error) error {
	t := d.t
	if h := s.holder(t.Name); h != nil {
		if ex, ok := h.(Exporter); ok {
			return s.walkExporter(ctx, q, inv, d, ex, vers, fn)
		}
	}
	names := make([]string, len(t.cols))
	for i, c := range t.cols {
		names[i] = quoteIdent(c.Name)
	}
	order := make([]string, len(t.pk))
	for i, p := range t.pk {
		order[i] = quoteIdent(p)
	}
	query := `SELECT ` + strings.Join(names, ", ") + ` FROM ` + quoteIdent(t.Name) + ` WHERE ` + quoteIdent(t.SubjectColumn) +
		` IN (` + placeholders(1, len(inv.ids)) + `) ORDER BY ` + strings.Join(order, ", ")
	rows, err := q.QueryContext(ctx, query, anyArgs(inv.ids)...)
	if err != nil {
		return fmt.Errorf("rights: read %s: %w", t.Name, err)
	}
	defer rows.Close()
	raw := make([]any, len(t.cols))
	ptrs := make([]any, len(t.cols))
	for i := range raw {
		ptrs[i] = &raw[i]
	}
	r := &row{Values: make([]any, len(d.Columns))}
	for rows.Next() {
		if err := rows.Scan(ptrs...); err != nil {
			return fmt.Errorf("rights: read %s: %w", t.Name, err)
		}
		if err := s.fillRow(ctx, q, inv, d, raw, vers, r); err != nil {
			return err
		}
		if err := fn(r); err != nil {
			return err
		}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("rights: read %s: %w", t.Name, err)
	}
	return nil
}

func (s *Service) walkExporter(ctx context.Context, q store.Q, inv *inventory, d *dataset, ex Exporter, vers versionAt, fn func(r *row) error) error {
	t := d.t
	list, err := ex.Export(ctx, q, t.Table, inv.ids)
	if err != nil {
		return fmt.Errorf("rights: export %s: %w", t.Name, err)
	}
	// The exporter decides which columns to show: only those it returns.
	shown := map[string]bool{}
	for _, m := range list {
		for k := range m {
			shown[k] = true
		}
	}
	var cols []column
	for _, c := range d.Columns {
		if shown[t.cols[c.idx].Name] {
			cols = append(cols, c)
		}
	}
	d.Columns = cols
	raw := make([]any, len(t.cols))
	r := &row{Values: make([]any, len(cols))}
	for _, m := range list {
		for i, c := range t.cols {
			raw[i] = m[c.Name]
		}
		if err := s.fillRow(ctx, q, inv, d, raw, vers, r); err != nil {
			return err
		}
		if err := fn(r); err != nil {
			return err
		}
	}
	return nil
}

// fillRow converts one row's raw values (by declared column) into r.
func (s *Service) fillRow(ctx context.Context, q store.Q, inv *inventory, d *dataset, raw []any, vers versionAt, r *row) error {
	t := d.t
	r.Unreadable = r.Unreadable[:0]
	subjectOfRow := textOf(raw[t.subjectIdx])
	// The row's date: its creation time where the table names one, else
	// its first instant.
	var firstTime time.Time
	if t.dateIdx >= 0 {
		firstTime, _ = raw[t.dateIdx].(time.Time)
	}
	for i, c := range t.cols {
		if !firstTime.IsZero() {
			break
		}
		if c.kind == kindTime {
			if tm, ok := raw[i].(time.Time); ok {
				firstTime = tm
			}
		}
	}
	r.Item = itemRef(t, raw)
	r.Source = t.Source
	r.PolicyVersion, r.PVBasis = 0, "unknown"
	for i, cc := range t.cols {
		switch cc.Name {
		case t.SourceColumn:
			r.Source = textOf(raw[i])
		case t.PolicyVersionColumn:
			if n, ok := raw[i].(int64); ok && n > 0 {
				r.PolicyVersion, r.PVBasis = int(n), "recorded"
			}
		}
	}
	if r.PolicyVersion == 0 && !firstTime.IsZero() {
		if n := vers.at(firstTime); n > 0 {
			r.PolicyVersion, r.PVBasis = n, "inferred-from-date"
		}
	}
	for j, c := range d.Columns {
		v, unreadable, err := s.exportValue(ctx, q, inv, t.cols[c.idx], c.Category, subjectOfRow, raw[c.idx])
		if err != nil {
			return fmt.Errorf("rights: export %s.%s: %w", t.Name, c.Name, err)
		}
		if unreadable {
			r.Unreadable = append(r.Unreadable, c.Name)
		}
		r.Values[j] = v
	}
	return nil
}

// exportValue turns a stored value into what the subject sees.
func (s *Service) exportValue(ctx context.Context, q store.Q, inv *inventory, c liveCol, category, subjectID string, v any) (any, bool, error) {
	if v == nil {
		return nil, false, nil
	}
	if c.Hashed {
		return hashedMarker, false, nil
	}
	if c.Sensitive {
		if plain, ok := v.(string); ok {
			return plain, false, nil // a holder's Exporter opened it (a value sealed under an item key)
		}
		b, ok := v.([]byte)
		if !ok {
			return nil, true, nil
		}
		if len(b) == 0 {
			return nil, false, nil
		}
		if category == "" || subjectID == "" {
			// The policy does not declare the field, so nothing can say
			// which key sealed it.
			return nil, true, nil
		}
		view, err := inv.view(ctx, s, q, subjectID)
		if err != nil {
			return nil, false, err
		}
		plain, err := view.OpenCategory(ctx, category, b)
		if errors.Is(err, door.ErrShredded) || errors.Is(err, door.ErrCorrupt) {
			return nil, true, nil
		}
		if err != nil {
			return nil, false, err
		}
		return string(plain), false, nil
	}
	switch c.kind {
	case kindTime:
		if t, ok := v.(time.Time); ok {
			return t.UTC().Format(time.RFC3339Nano), false, nil
		}
		return textOf(v), false, nil
	case kindBool:
		switch x := v.(type) {
		case bool:
			return x, false, nil
		case int64:
			return x != 0, false, nil
		}
	case kindInt:
		if n, ok := v.(int64); ok {
			return n, false, nil
		}
	case kindFloat:
		if f, ok := v.(float64); ok {
			return f, false, nil
		}
	case kindBytes:
		if b, ok := v.([]byte); ok {
			return base64.StdEncoding.EncodeToString(b), false, nil
		}
	}
	return textOf(v), false, nil
}

func textOf(v any) string {
	switch x := v.(type) {
	case nil:
		return ""
	case string:
		return x
	case []byte:
		return string(x)
	case time.Time:
		return x.UTC().Format(time.RFC3339Nano)
	default:
		return fmt.Sprint(x)
	}
}

// writeRowJSON writes one row as a JSON object whose fields keep the
// dataset's column order. It is the hot loop of every export, so values
// are appended by hand rather than through encoding/json.
func writeRowJSON(b *bytes.Buffer, d *dataset, r *row, cols []int) error {
	out := b.AvailableBuffer()
	out = append(out, `{"item":`...)
	out = appendJSONString(out, r.Item)
	out = append(out, `,"source":`...)
	out = appendJSONString(out, r.Source)
	out = append(out, `,"source_label":`...)
	out = appendJSONString(out, sourceLabel(r.Source))
	out = append(out, `,"policy_version":`...)
	if r.PolicyVersion > 0 {
		out = strconv.AppendInt(out, int64(r.PolicyVersion), 10)
	} else {
		out = append(out, "null"...)
	}
	out = append(out, `,"policy_version_basis":`...)
	out = appendJSONString(out, r.PVBasis)
	out = append(out, `,"fields":{`...)
	for n, j := range cols {
		if n > 0 {
			out = append(out, ',')
		}
		out = appendJSONString(out, d.Columns[j].Name)
		out = append(out, ':')
		var err error
		if out, err = appendJSONValue(out, r.Values[j]); err != nil {
			return err
		}
	}
	out = append(out, '}')
	if len(r.Unreadable) > 0 {
		out = append(out, `,"erased_encrypted_fields":[`...)
		for i, u := range r.Unreadable {
			if i > 0 {
				out = append(out, ',')
			}
			out = appendJSONString(out, u)
		}
		out = append(out, ']')
	}
	out = append(out, '}')
	b.Write(out)
	return nil
}

func appendJSONValue(b []byte, v any) ([]byte, error) {
	switch x := v.(type) {
	case nil:
		return append(b, "null"...), nil
	case string:
		return appendJSONString(b, x), nil
	case int64:
		return strconv.AppendInt(b, x, 10), nil
	case bool:
		return strconv.AppendBool(b, x), nil
	case float64:
		// JSON has no NaN or infinity, which a REAL or double precision
		// column can hold: null, as JavaScript writes them, rather than
		// an error that would fail the whole export.
		if math.IsNaN(x) || math.IsInf(x, 0) {
			return append(b, "null"...), nil
		}
	}
	j, err := json.Marshal(v)
	if err != nil {
		return b, err
	}
	return append(b, j...), nil
}

// appendJSONString appends s as a JSON string: plain printable ASCII as
// it is, anything else through encoding/json.
func appendJSONString(b []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < 0x20 || c >= 0x80 || c == '"' || c == '\\' || c == '<' || c == '>' || c == '&' {
			j, _ := json.Marshal(s)
			return append(b, j...)
		}
	}
	b = append(b, '"')
	b = append(b, s...)
	return append(b, '"')
}

func writeJSONString(b *bytes.Buffer, s string) {
	b.Write(appendJSONString(b.AvailableBuffer(), s))
}

// sourceLabel is a row's source in words.
func sourceLabel(s string) string {
	switch s {
	case "subject", "form":
		return "you gave it to us"
	case "signup":
		return "you gave it to us when you signed up"
	case "observed", "tracker":
		return "recorded as you used our services"
	case "steward", "derived":
		return "made by our systems from other data"
	case "third-party":
		return "a third party you allowed to share it with us"
	case "public":
		return "publicly available sources"
	case "rights-request":
		return "your privacy request"
	case "api":
		return "you, through the site's programming interface"
	case "email_link":
		return "you, by a link in an email we sent"
	case "gpc":
		return "your browser's Global Privacy Control signal"
	case "staff":
		return "our staff, at your request"
	}
	if name, ok := strings.CutPrefix(s, "import:"); ok {
		switch name {
		case "seminar":
			return "a seminar or event you attended"
		case "survey":
			return "a survey you answered"
		}
		return "records imported from " + name
	}
	if name, ok := strings.CutPrefix(s, "oidc:"); ok {
		return "your sign-in with " + name
	}
	if name, ok := strings.CutPrefix(s, "third-party:"); ok {
		// A sign-in with another service records the service's id.
		return "a third party you allowed to share it with us (" + name + ")"
	}
	if s == "" {
		return "not recorded"
	}
	return s
}

// portableColumns returns the columns of d a portability export carries,
// or nil when none: what the subject provided (origin provided) in a
// category some consent- or contract-based purpose uses (Art. 20(1)(a)),
// never hashes; plus the dates that place it in time. Consent records are
// always carried: they are the subject's own choices, and a new
// controller needs them.
func (s *Service) portableColumns(d *dataset) []int {
	if d.t.Origin != registry.Provided {
		return nil
	}
	var out []int
	personal := false
	for j, c := range d.Columns {
		lc := d.t.cols[c.idx]
		switch {
		case lc.Hashed:
		case lc.Field == "consent":
			out = append(out, j)
			personal = true
		case lc.Personal():
			if s.portableCategory(c.Category) {
				out = append(out, j)
				personal = true
			}
		case lc.kind == kindTime:
			out = append(out, j)
		}
	}
	if !personal {
		return nil
	}
	return out
}

// portableCategory reports whether a declared purpose based on consent or
// contract uses the category.
func (s *Service) portableCategory(cat string) bool {
	if cat == "" {
		return false
	}
	for _, p := range s.pol.Purposes() {
		if p.Builtin || (p.Basis != policy.BasisConsent && p.Basis != policy.BasisContract) {
			continue
		}
		if slices.Contains(p.Uses, cat) {
			return true
		}
	}
	return false
}

func allColumns(d *dataset) []int {
	out := make([]int, len(d.Columns))
	for i := range out {
		out[i] = i
	}
	return out
}

// view returns the door's view of one of the inventory's subjects for
// their own request, opened once per export.
func (inv *inventory) view(ctx context.Context, s *Service, q store.Q, subjectID string) (*door.View, error) {
	if v, ok := inv.views[subjectID]; ok {
		return v, nil
	}
	v, err := s.door.Subject(ctx, q, door.Subject(), subjectID)
	if err != nil {
		return nil, err
	}
	if inv.views == nil {
		inv.views = map[string]*door.View{}
	}
	inv.views[subjectID] = v
	return v, nil
}
