package rights

import (
	"archive/zip"
	"bufio"
	"bytes"
	"compress/flate"
	"context"
	"encoding/json"
	"fmt"
	"hash"
	"hash/crc32"
	"html/template"
	"io"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"steward/internal/audit"
	"steward/internal/store"
)

// Report formats.
const (
	AccessFormat      = "steward-access-report/1"
	PortabilityFormat = "steward-portability/1"
)

// Summary is what the privacy centre shows without the data itself: the
// cover sheet and how many records each dataset holds.
type Summary struct {
	Cover    *CoverSheet
	Datasets []DatasetSummary
	// Restricted says a restriction of processing is in force, on
	// RestrictedCategories (all when empty).
	Restricted           bool
	RestrictedCategories []string
}

// DatasetSummary is one dataset's name, meaning and size.
type DatasetSummary struct {
	Name        string
	Description string
	Categories  []string
	Records     int
	Kept        string
	Portable    bool
}

// Summarize returns the cover sheet and the dataset counts of a subject.
func (s *Service) Summarize(ctx context.Context, subjectID string) (Summary, error) {
	inv, err := s.inventory(ctx, s.db, subjectID)
	if err != nil {
		return Summary{}, err
	}
	cov, err := s.cover(ctx, inv)
	if err != nil {
		return Summary{}, err
	}
	out := Summary{Cover: cov}
	if st, err := s.subjects.State(ctx, s.db, subjectID); err == nil {
		out.Restricted, out.RestrictedCategories = st.Restricted, st.RestrictedCategories
	}
	for _, d := range inv.held() {
		out.Datasets = append(out.Datasets, DatasetSummary{Name: d.Name, Description: d.Description, Categories: d.Categories,
			Records: d.Count, Kept: d.Kept, Portable: s.portableColumns(d) != nil})
	}
	return out, nil
}

// AccessReport writes the subject's access report as JSON to w: the cover
// sheet, then every dataset holding their data with every row, each with
// its source and the policy version it was collected under. Reading one's
// own data is the built-in purpose subject-request, which the guard allows
// in every state.
func (s *Service) AccessReport(ctx context.Context, subjectID string, w io.Writer) error {
	inv, err := s.inventory(ctx, s.db, subjectID)
	if err != nil {
		return err
	}
	vers, err := s.versions(ctx, s.db)
	if err != nil {
		return err
	}
	cov, err := s.cover(ctx, inv)
	if err != nil {
		return err
	}
	return s.writeAccess(ctx, s.db, inv, cov, vers, w, nil, nil)
}

// AccessReportOf writes a signed-in member's own access report, once they
// proved their presence, and audits the reading.
func (s *Service) AccessReportOf(ctx context.Context, who Requester, w io.Writer) error {
	if err := s.reauthenticate(ctx, who, "data"); err != nil {
		return err
	}
	var buf bytes.Buffer
	if err := s.AccessReport(ctx, who.SubjectID, &buf); err != nil {
		return err
	}
	if err := s.audit.Record(ctx, s.db, audit.Event{Actor: who.SubjectID, Action: "rights.access_report",
		Subject: who.SubjectID, Detail: map[string]string{"bytes": strconv.Itoa(buf.Len())}}); err != nil {
		return err
	}
	_, err := w.Write(buf.Bytes())
	return err
}

// writeAccess streams the access report. csvs and samples, when not nil,
// are filled for the ZIP (a CSV per dataset, the first rows for the
// readable index).
func (s *Service) writeAccess(ctx context.Context, q store.Q, inv *inventory, cov *CoverSheet, vers versionAt, w io.Writer,
	csvs map[string]*deflated, samples map[string][][]string) error {
	bw := bufio.NewWriterSize(w, 64<<10)
	head := struct {
		Format      string      `json:"format"`
		GeneratedAt time.Time   `json:"generated_at"`
		Subject     string      `json:"subject_id"`
		Cover       *CoverSheet `json:"cover_sheet"`
	}{AccessFormat, s.clock.Now(), inv.subjectID, cov}
	hb, err := json.Marshal(head)
	if err != nil {
		return fmt.Errorf("rights: encode report: %w", err)
	}
	bw.Write(hb[:len(hb)-1])
	bw.WriteString(`,"datasets":[`)
	for i, d := range inv.held() {
		if i > 0 {
			bw.WriteByte(',')
		}
		if err := s.writeDataset(ctx, q, inv, d, vers, bw, allColumns, csvs, samples, true); err != nil {
			return err
		}
	}
	bw.WriteString("]}\n")
	return bw.Flush()
}

// writeDataset writes one dataset object with its rows. Its columns are
// known only once an exporter ran, so the header is written after the
// rows are buffered per row.
func (s *Service) writeDataset(ctx context.Context, q store.Q, inv *inventory, d *dataset, vers versionAt, w *bufio.Writer,
	pick func(*dataset) []int, csvs map[string]*deflated, samples map[string][][]string, withName bool) error {
	var rowsBuf bytes.Buffer
	var cw *bufio.Writer
	var line []byte
	var cols []int
	n := 0
	flushRows := func() {
		w.Write(rowsBuf.Bytes())
		rowsBuf.Reset()
	}
	headerDone := false
	writeHeader := func() error {
		cols = pick(d)
		meta := struct {
			Name        string   `json:"name,omitempty"`
			Description string   `json:"description"`
			Origin      string   `json:"origin"`
			Categories  []string `json:"categories"`
			Kept        string   `json:"kept_after_erasure,omitempty"`
			Columns     []column `json:"columns"`
			Count       int      `json:"count"`
		}{Description: d.Description, Origin: d.Origin, Categories: d.Categories, Kept: d.Kept, Count: d.Count}
		if withName {
			meta.Name = d.Name
		}
		for _, j := range cols {
			meta.Columns = append(meta.Columns, d.Columns[j])
		}
		if meta.Columns == nil {
			meta.Columns = []column{}
		}
		mb, err := json.Marshal(meta)
		if err != nil {
			return err
		}
		w.Write(mb[:len(mb)-1])
		w.WriteString(`,"rows":[`)
		if csvs != nil {
			buf := newDeflated()
			csvs[d.Name] = buf
			cw = bufio.NewWriterSize(buf, 64<<10)
			hdr := []string{"item", "source", "policy_version"}
			for _, j := range cols {
				hdr = append(hdr, d.Columns[j].Name)
			}
			cw.Write(append(appendCSV(nil, hdr...), '\r', '\n'))
		}
		headerDone = true
		return nil
	}
	err := s.walk(ctx, q, inv, d, vers, func(r *row) error {
		if !headerDone {
			if err := writeHeader(); err != nil {
				return err
			}
		}
		if n > 0 {
			rowsBuf.WriteByte(',')
		}
		n++
		if err := writeRowJSON(&rowsBuf, d, r, cols); err != nil {
			return err
		}
		if rowsBuf.Len() > 32<<10 {
			flushRows()
		}
		if cw != nil {
			pv := ""
			if r.PolicyVersion > 0 {
				pv = strconv.Itoa(r.PolicyVersion)
			}
			line = appendCSV(line[:0], r.Item, r.Source, pv)
			for _, j := range cols {
				line = append(line, ',')
				line = appendCSVField(line, csvValue(r.Values[j]))
			}
			line = append(line, '\r', '\n')
			cw.Write(line)
		}
		if samples != nil && len(samples[d.Name]) < sampleRows {
			rec := []string{r.Item, r.Source, ""}
			if r.PolicyVersion > 0 {
				rec[2] = strconv.Itoa(r.PolicyVersion)
			}
			for _, j := range cols {
				rec = append(rec, csvValue(r.Values[j]))
			}
			samples[d.Name] = append(samples[d.Name], rec)
		}
		return nil
	})
	if err != nil {
		return err
	}
	if !headerDone {
		// The rows went between the count and the read.
		if err := writeHeader(); err != nil {
			return err
		}
	}
	flushRows()
	w.WriteString("]}")
	if cw != nil {
		if err := cw.Flush(); err != nil {
			return fmt.Errorf("rights: write csv: %w", err)
		}
	}
	return nil
}

// appendCSV appends fields as the start of a CSV record (RFC 4180); the
// caller ends the record with CRLF. encoding/csv costs twice as much on
// an export's hundred thousand rows.
func appendCSV(b []byte, fields ...string) []byte {
	for i, f := range fields {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendCSVField(b, f)
	}
	return b
}

// appendCSVField appends one field, quoted only when it must be.
func appendCSVField(b []byte, f string) []byte {
	needs := f != "" && (f[0] == ' ' || f[0] == '\t')
	for i := 0; i < len(f) && !needs; i++ {
		switch f[i] {
		case ',', '"', '\n', '\r':
			needs = true
		}
	}
	if !needs {
		return append(b, f...)
	}
	b = append(b, '"')
	for i := 0; i < len(f); i++ {
		if f[i] == '"' {
			b = append(b, '"')
		}
		b = append(b, f[i])
	}
	return append(b, '"')
}

// sampleRows is how many rows of each dataset the readable index shows;
// the CSV and JSON files hold them all.
const sampleRows = 20

// csvValue renders a value for a spreadsheet. A value a spreadsheet would
// run as a formula gets a leading apostrophe (CSV injection); numbers such
// as phone numbers starting with + stay as they are. The JSON files carry
// every value unchanged.
func csvValue(v any) string {
	var s string
	switch x := v.(type) {
	case nil:
		return ""
	case string:
		s = x
	case bool:
		return strconv.FormatBool(x)
	case int64:
		return strconv.FormatInt(x, 10)
	default:
		s = fmt.Sprint(x)
	}
	if s == "" {
		return s
	}
	switch s[0] {
	case '=', '@', '\t', '\r':
		return "'" + s
	case '+', '-':
		if strings.IndexFunc(s[1:], func(r rune) bool {
			return !(unicode.IsDigit(r) || r == ' ' || r == '.' || r == '(' || r == ')' || r == '-')
		}) >= 0 {
			return "'" + s
		}
	}
	return s
}

// exportResult says what an export holds.
type exportResult struct {
	Format    string    `json:"format"`
	Datasets  []string  `json:"datasets"`
	Records   int       `json:"records"`
	Files     int       `json:"files,omitempty"`
	Bytes     int       `json:"bytes"`
	ExpiresAt time.Time `json:"download_expires_at"`
	Renamed   int       `json:"renamed_files,omitempty"`
}

// buildExport makes the ZIP of an access or portability request.
// progress is told how far it got, in percent.
func (s *Service) buildExport(ctx context.Context, r Request, progress func(int)) ([]byte, exportResult, error) {
	res := exportResult{Datasets: []string{}}
	inv, err := s.inventory(ctx, s.db, r.SubjectID)
	if err != nil {
		return nil, res, err
	}
	vers, err := s.versions(ctx, s.db)
	if err != nil {
		return nil, res, err
	}
	cov, err := s.cover(ctx, inv)
	if err != nil {
		return nil, res, err
	}
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	zw.RegisterCompressor(zip.Deflate, func(out io.Writer) (io.WriteCloser, error) { return flate.NewWriter(out, flate.BestSpeed) })
	now := s.clock.Now()
	create := func(name string) (io.Writer, error) {
		return zw.CreateHeader(&zip.FileHeader{Name: name, Method: zip.Deflate, Modified: now})
	}
	// The big entries are compressed by goroutines of their own while
	// this one reads the database, then added to the ZIP as they are.
	csvs := map[string]*deflated{}
	defer func() {
		for _, d := range csvs {
			d.finish()
		}
	}()
	samples := map[string][][]string{}
	var sets []*dataset
	var picks [][]int
	main := newDeflated()
	defer main.finish()
	mainName := "access.json"
	if r.Type == Access {
		res.Format = AccessFormat
		if err := s.writeAccess(ctx, s.db, inv, cov, vers, main, csvs, samples); err != nil {
			return nil, res, err
		}
		for _, d := range inv.held() {
			sets = append(sets, d)
			picks = append(picks, allColumns(d))
		}
	} else {
		res.Format, mainName = PortabilityFormat, "data.json"
		if sets, picks, err = s.writePortable(ctx, inv, vers, main, csvs, samples, progress); err != nil {
			return nil, res, err
		}
		schema, err := s.portableSchema(sets, picks)
		if err != nil {
			return nil, res, err
		}
		w, err := create("data.schema.json")
		if err != nil {
			return nil, res, err
		}
		if _, err := w.Write(schema); err != nil {
			return nil, res, err
		}
	}
	progress(80)
	if err := main.addTo(zw, mainName, now); err != nil {
		return nil, res, err
	}
	for _, d := range sets {
		c := csvs[d.Name]
		if c == nil {
			continue
		}
		if err := c.addTo(zw, d.Name+".csv", now); err != nil {
			return nil, res, err
		}
		res.Datasets = append(res.Datasets, d.Name)
		res.Records += d.Count
	}
	var files []fileEntry
	if r.Type == Portability {
		if files, err = s.addFiles(ctx, zw, r.SubjectID, now); err != nil {
			return nil, res, err
		}
		res.Files = len(files)
		for _, f := range files {
			if f.renamed {
				res.Renamed++
			}
		}
	}
	w, err := create("index.html")
	if err != nil {
		return nil, res, err
	}
	if err := s.writeIndex(w, r, cov, sets, picks, samples, files, now); err != nil {
		return nil, res, err
	}
	if err := zw.Close(); err != nil {
		return nil, res, fmt.Errorf("rights: close zip: %w", err)
	}
	res.Bytes = buf.Len()
	return buf.Bytes(), res, nil
}

// deflated compresses what is written to it in a goroutine of its own,
// so compression runs beside the database reads that produce the data.
type deflated struct {
	pw   *io.PipeWriter
	buf  bytes.Buffer
	crc  hash.Hash32
	n    int64
	done chan error
	err  error
	over bool
}

func newDeflated() *deflated {
	pr, pw := io.Pipe()
	d := &deflated{pw: pw, crc: crc32.NewIEEE(), done: make(chan error, 1)}
	go func() {
		fw, _ := flate.NewWriter(&d.buf, flate.BestSpeed)
		n, err := io.Copy(io.MultiWriter(fw, d.crc), pr)
		if cerr := fw.Close(); err == nil {
			err = cerr
		}
		d.n = n
		pr.CloseWithError(err)
		d.done <- err
	}()
	return d
}

func (d *deflated) Write(p []byte) (int, error) { return d.pw.Write(p) }

// finish ends the input and waits for the compressor.
func (d *deflated) finish() error {
	if d.over {
		return d.err
	}
	d.over = true
	d.pw.Close()
	d.err = <-d.done
	return d.err
}

// addTo adds the compressed bytes to the ZIP as one entry.
func (d *deflated) addTo(zw *zip.Writer, name string, mod time.Time) error {
	if err := d.finish(); err != nil {
		return fmt.Errorf("rights: compress %s: %w", name, err)
	}
	w, err := zw.CreateRaw(&zip.FileHeader{Name: name, Method: zip.Deflate, Modified: mod, CRC32: d.crc.Sum32(),
		CompressedSize64: uint64(d.buf.Len()), UncompressedSize64: uint64(d.n)})
	if err != nil {
		return err
	}
	_, err = w.Write(d.buf.Bytes())
	return err
}

// writePortable streams data.json: the datasets the subject provided
// under consent or contract, each with only its portable columns.
func (s *Service) writePortable(ctx context.Context, inv *inventory, vers versionAt, w io.Writer, csvs map[string]*deflated,
	samples map[string][][]string, progress func(int)) ([]*dataset, [][]int, error) {
	bw := bufio.NewWriterSize(w, 64<<10)
	head := struct {
		Format      string    `json:"format"`
		GeneratedAt time.Time `json:"generated_at"`
		Controller  string    `json:"controller"`
		Subject     string    `json:"subject_id"`
		Note        string    `json:"note"`
	}{PortabilityFormat, s.clock.Now(), s.pol.Controller.Name, inv.subjectID,
		"The personal data you provided to " + s.pol.Controller.Name + " under a contract or your consent (GDPR Art. 20), " +
			"described by data.schema.json. Dataset names are stable across versions of Steward."}
	hb, err := json.Marshal(head)
	if err != nil {
		return nil, nil, err
	}
	bw.Write(hb[:len(hb)-1])
	bw.WriteString(`,"datasets":{`)
	var sets []*dataset
	var picks [][]int
	held := inv.held()
	for i, d := range held {
		cols := s.portableColumns(d)
		if cols == nil {
			continue
		}
		if len(sets) > 0 {
			bw.WriteByte(',')
		}
		sets = append(sets, d)
		writeJSONStringTo(bw, d.Name)
		bw.WriteByte(':')
		pick := func(*dataset) []int { return s.portableColumns(d) }
		if err := s.writeDataset(ctx, s.db, inv, d, vers, bw, pick, csvs, samples, false); err != nil {
			return nil, nil, err
		}
		picks = append(picks, s.portableColumns(d))
		progress(10 + 70*(i+1)/len(held))
	}
	bw.WriteString("}}\n")
	return sets, picks, bw.Flush()
}

func writeJSONStringTo(w *bufio.Writer, s string) {
	b, _ := json.Marshal(s)
	w.Write(b)
}

// portableSchema is the JSON Schema (2020-12) of data.json.
func (s *Service) portableSchema(sets []*dataset, picks [][]int) ([]byte, error) {
	props := map[string]any{}
	defs := map[string]any{}
	for i, d := range sets {
		fields := map[string]any{}
		for _, j := range picks[i] {
			c := d.Columns[j]
			typ := any([]string{c.kind.jsonType(), "null"})
			f := map[string]any{"type": typ}
			switch {
			case c.Sensitive:
				f["type"] = []string{"string", "null"}
				f["description"] = "Stored encrypted with a key of yours; null if it was erased."
			case c.kind == kindTime:
				f["format"] = "date-time"
			case c.kind == kindBytes:
				f["contentEncoding"] = "base64"
			}
			if c.Field != "" {
				f["title"] = c.Field
			}
			fields[c.Name] = f
		}
		defs[d.Name] = map[string]any{
			"type":     "object",
			"required": []string{"item", "source", "policy_version", "fields"},
			"properties": map[string]any{
				"item":                 map[string]any{"type": "string", "description": "Names the record: dataset/key."},
				"source":               map[string]any{"type": "string", "description": "Where the record came from."},
				"source_label":         map[string]any{"type": "string"},
				"policy_version":       map[string]any{"type": []string{"integer", "null"}, "description": "The privacy policy version it was collected under."},
				"policy_version_basis": map[string]any{"enum": []string{"recorded", "inferred-from-date", "unknown"}},
				"fields":               map[string]any{"type": "object", "properties": fields, "additionalProperties": false},
				"erased_encrypted_fields": map[string]any{"type": "array", "items": map[string]any{"type": "string"},
					"description": "Encrypted fields whose key was destroyed: their value is gone."},
			},
			"additionalProperties": false,
		}
		props[d.Name] = map[string]any{
			"type":     "object",
			"required": []string{"description", "origin", "columns", "count", "rows"},
			"properties": map[string]any{
				"description":        map[string]any{"type": "string"},
				"origin":             map[string]any{"type": "string"},
				"categories":         map[string]any{"type": "array", "items": map[string]any{"type": "string"}},
				"kept_after_erasure": map[string]any{"type": "string"},
				"columns":            map[string]any{"type": "array"},
				"count":              map[string]any{"type": "integer", "minimum": 0},
				"rows":               map[string]any{"type": "array", "items": map[string]any{"$ref": "#/$defs/" + d.Name}},
			},
			"description": d.Description,
		}
	}
	doc := map[string]any{
		"$schema":  "https://json-schema.org/draft/2020-12/schema",
		"$id":      "https://steward.dev/schemas/portability/1",
		"title":    "Personal data provided to " + s.pol.Controller.Name,
		"type":     "object",
		"required": []string{"format", "generated_at", "subject_id", "datasets"},
		"properties": map[string]any{
			"format":       map[string]any{"const": PortabilityFormat},
			"generated_at": map[string]any{"type": "string", "format": "date-time"},
			"controller":   map[string]any{"type": "string"},
			"subject_id":   map[string]any{"type": "string"},
			"note":         map[string]any{"type": "string"},
			"datasets":     map[string]any{"type": "object", "properties": props, "additionalProperties": false},
		},
		"$defs": defs,
	}
	return json.MarshalIndent(doc, "", "  ")
}

// fileEntry is an uploaded file as it went into the ZIP.
type fileEntry struct {
	Original, Path string
	renamed        bool
}

// addFiles copies the subject's uploads into files/ under safe names. A
// name from an upload is only a label: the ZIP path is rebuilt from its
// last element, so "../../etc/passwd" or "C:\\x" land as plain names
// inside files/.
func (s *Service) addFiles(ctx context.Context, zw *zip.Writer, subjectID string, now time.Time) ([]fileEntry, error) {
	var out []fileEntry
	used := map[string]bool{}
	renamed := 0
	for _, src := range s.fileSources() {
		files, err := src.Files(ctx, subjectID)
		if err != nil {
			return nil, fmt.Errorf("rights: list uploads: %w", err)
		}
		for _, f := range files {
			name := SafeName(f.Name)
			base, ext := splitExt(name)
			for i := 2; used[strings.ToLower(name)]; i++ {
				name = fmt.Sprintf("%s-%d%s", base, i, ext)
			}
			used[strings.ToLower(name)] = true
			e := fileEntry{Original: f.Name, Path: "files/" + name, renamed: name != f.Name}
			if e.renamed {
				renamed++
			}
			mod := f.ModTime
			if mod.IsZero() {
				mod = now
			}
			w, err := zw.CreateHeader(&zip.FileHeader{Name: e.Path, Method: zip.Store, Modified: mod})
			if err != nil {
				return nil, err
			}
			rc, err := f.Open()
			if err != nil {
				return nil, fmt.Errorf("rights: open upload: %w", err)
			}
			_, err = io.Copy(w, rc)
			rc.Close()
			if err != nil {
				return nil, fmt.Errorf("rights: copy upload: %w", err)
			}
			out = append(out, e)
		}
	}
	if renamed > 0 {
		if err := s.audit.Record(ctx, s.db, audit.Event{Actor: "system", Action: "rights.export_names_sanitized", Subject: subjectID,
			Detail: map[string]string{"files": strconv.Itoa(renamed)}}); err != nil {
			return nil, err
		}
	}
	return out, nil
}

func splitExt(name string) (string, string) {
	if i := strings.LastIndexByte(name, '.'); i > 0 {
		return name[:i], name[i:]
	}
	return name, ""
}

// reservedNames are device names Windows refuses as file names.
var reservedNames = map[string]bool{"con": true, "prn": true, "aux": true, "nul": true,
	"com1": true, "com2": true, "com3": true, "com4": true, "com5": true, "com6": true, "com7": true, "com8": true, "com9": true,
	"lpt1": true, "lpt2": true, "lpt3": true, "lpt4": true, "lpt5": true, "lpt6": true, "lpt7": true, "lpt8": true, "lpt9": true}

// SafeName turns an uploaded file's name into one safe in a ZIP on any
// system: its last path element only, letters, digits and . _ - space
// kept, everything else (separators, control characters, colons, quotes)
// replaced by _, no leading dots, no trailing dots or spaces, no Windows
// device names, at most maxSafeName bytes. A safe name is its own safe
// name.
func SafeName(name string) string {
	if i := strings.LastIndexAny(name, `/\`); i >= 0 {
		name = name[i+1:]
	}
	if !utf8.ValidString(name) {
		name = strings.ToValidUTF8(name, "_")
	}
	var b strings.Builder
	for _, r := range name {
		switch {
		case unicode.IsLetter(r) || unicode.IsDigit(r) || r == '.' || r == '_' || r == '-' || r == ' ':
			b.WriteRune(r)
		default:
			b.WriteByte('_')
		}
	}
	out := shorten(strings.Trim(b.String(), " ."))
	if out == "" {
		return "file"
	}
	// Checked after shortening, which can bare a device name
	// ("con" + spaces); the _ may need shortening again.
	if reserved(out) {
		out = shorten("_" + out)
	}
	return out
}

// maxSafeName bounds a safe name, in bytes.
const maxSafeName = 100

// shorten bounds name to maxSafeName bytes on a rune boundary, keeping an
// extension of up to 20 bytes; a longer "extension" is part of the name.
// It leaves no trailing dot or space.
func shorten(name string) string {
	if len(name) <= maxSafeName {
		return name
	}
	base, ext := splitExt(name)
	if len(ext) > 20 {
		base, ext = name, ""
	}
	cut := maxSafeName - len(ext)
	for cut > 0 && !utf8.RuneStart(base[cut]) {
		cut--
	}
	return strings.TrimRight(base[:cut], " .") + ext
}

// reserved reports whether Windows takes name for a device: its part
// before the first dot, without trailing spaces, is one ("CON.tar.gz").
func reserved(name string) bool {
	stem, _, _ := strings.Cut(name, ".")
	return reservedNames[strings.ToLower(strings.TrimRight(stem, " "))]
}

var indexTemplate = template.Must(template.New("index").Funcs(template.FuncMap{
	"date": func(t time.Time) string { return t.UTC().Format("2 January 2006, 15:04 UTC") },
}).Parse(`<!doctype html>
<html lang="en">
<head><meta charset="utf-8"><title>{{.Title}}</title>
<style>body{font-family:sans-serif;max-width:60rem;margin:2rem auto;padding:0 1rem;line-height:1.5}table{border-collapse:collapse;font-size:.9rem}td,th{border:1px solid #ccc;padding:.2rem .4rem;text-align:left;vertical-align:top}</style>
</head>
<body>
<h1>{{.Title}}</h1>
<p>Made for you by {{.Cover.Controller.Name}} on {{date .Now}}, for your request {{.RequestID}}, under version {{.Cover.PolicyVersion}} of the privacy policy.</p>
<p>{{.Intro}}</p>
<h2>What we process and why</h2>
<p>{{.Cover.Statement}}</p>
{{- with .Cover.Purposes}}
<table><caption>Purposes</caption><tr><th>Purpose</th><th>Basis</th><th>Your data it uses</th></tr>
{{- range .}}<tr><td>{{.Description}}</td><td>{{.Basis}}{{with .Interest}}: {{.}}{{end}}</td><td>{{range $i, $c := .Categories}}{{if $i}}, {{end}}{{$c}}{{end}}</td></tr>{{end}}
</table>
{{- end}}
{{- with .Cover.Categories}}
<table><caption>Categories, how long we keep them and where they come from</caption><tr><th>Category</th><th>Kept</th><th>Records</th></tr>
{{- range .}}<tr><td>{{.ID}}: {{.Description}}</td><td>{{.Retention}}</td><td>{{.Records}}</td></tr>{{end}}
</table>
{{- end}}
<h2>Who may have received it</h2>
<p>{{.Cover.RecipientsNote}}</p>
<ul>{{range .Cover.Recipients}}<li>{{.Name}} ({{.Role}}, {{.CountryName}}{{with .Safeguard}}, safeguard: {{.}}{{end}}) — {{.Basis}}</li>{{else}}<li>No recipient.</li>{{end}}</ul>
{{- with .Cover.Disclosures}}
<table><caption>Each disclosure of your data</caption><tr><th>Date</th><th>Recipient</th><th>Purpose</th><th>What</th><th>Basis</th></tr>
{{- range .}}<tr><td>{{.At.Format "2 January 2006"}}</td><td>{{.RecipientName}}</td><td>{{.Purpose}}</td><td>{{range $i, $f := .Fields}}{{if $i}}, {{end}}{{$f}}{{else}}{{range $i, $c := .Categories}}{{if $i}}, {{end}}{{$c}}{{end}}{{end}}</td><td>{{.Basis}}</td></tr>{{end}}
</table>
{{- end}}
{{- with .Cover.Transfers}}
<h2>Countries outside ours</h2>
<ul>{{range .}}<li>{{.CountryName}}: {{if .Stores}}stored{{end}}{{if and .Stores .Processes}} and {{end}}{{if .Processes}}processed{{end}}, protected by {{.Safeguard}}</li>{{end}}</ul>
{{- end}}
<h2>Your rights</h2>
<ul>{{range .Cover.Rights}}{{if .Offered}}<li>{{.Right}}: {{.Note}}</li>{{end}}{{end}}</ul>
<p>Automated decisions: {{.Cover.AutomatedDecisions}}.</p>
<p>You may complain to {{.Cover.Complaint.Name}}{{with .Cover.Complaint.URL}} ({{.}}){{end}}. {{.Cover.Complaint.Complaint}}</p>
<h2>Your data</h2>
<p>{{.FilesNote}}</p>
{{- range .Sets}}
<h3>{{.Name}} ({{.Count}} record{{if ne .Count 1}}s{{end}})</h3>
<p>{{.Description}} File: <code>{{.Name}}.csv</code>.{{if gt .Count (len .Rows)}} The first {{len .Rows}} records are shown here.{{end}}</p>
<table><tr>{{range .Header}}<th>{{.}}</th>{{end}}</tr>
{{- range .Rows}}<tr>{{range .}}<td>{{.}}</td>{{end}}</tr>{{end}}
</table>
{{- end}}
{{- with .Files}}
<h2>Your files</h2>
<ul>{{range .}}<li><code>{{.Path}}</code>{{if ne .Path (print "files/" .Original)}} (uploaded as “{{.Original}}”){{end}}</li>{{end}}</ul>
{{- end}}
</body>
</html>
`))

type indexSet struct {
	Name, Description string
	Count             int
	Header            []string
	Rows              [][]string
}

func (s *Service) writeIndex(w io.Writer, r Request, cov *CoverSheet, sets []*dataset, picks [][]int, samples map[string][][]string,
	files []fileEntry, now time.Time) error {
	v := struct {
		Title, Intro, FilesNote, RequestID string
		Now                                time.Time
		Cover                              *CoverSheet
		Sets                               []indexSet
		Files                              []fileEntry
	}{RequestID: r.ID, Now: now, Cover: cov}
	// The page is UTF-8; the CSV and JSON files carry stored values as
	// they are, but a stored value or upload name may not be valid text.
	for _, f := range files {
		f.Original = strings.ToValidUTF8(f.Original, "\uFFFD")
		v.Files = append(v.Files, f)
	}
	if r.Type == Access {
		v.Title = "Your personal data at " + cov.Controller.Name
		v.Intro = "This is everything we hold about you, with what we do with it. access.json holds all of it in one machine-readable file; each dataset is also a CSV file."
		v.FilesNote = "Each record says where it came from and the policy version it was collected under (see access.json)."
	} else {
		v.Title = "Your data to take elsewhere, from " + cov.Controller.Name
		v.Intro = "This is the data you provided to us under a contract or your consent (GDPR Art. 20), in data.json (described by data.schema.json) and one CSV file per dataset, ready for another service."
		v.FilesNote = "In the CSV files a value a spreadsheet would run as a formula starts with an apostrophe; data.json holds every value unchanged."
	}
	for i, d := range sets {
		is := indexSet{Name: d.Name, Description: d.Description, Count: d.Count, Header: []string{"item", "source", "policy version"}}
		for _, j := range picks[i] {
			if j < len(d.Columns) {
				is.Header = append(is.Header, d.Columns[j].Name)
			}
		}
		for _, rec := range samples[d.Name] {
			valid := make([]string, len(rec))
			for k, field := range rec {
				valid[k] = strings.ToValidUTF8(field, "\uFFFD")
			}
			is.Rows = append(is.Rows, valid)
		}
		v.Sets = append(v.Sets, is)
	}
	return indexTemplate.Execute(w, v)
}
