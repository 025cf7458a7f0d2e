package policy

import (
	"fmt"
	"reflect"
	"regexp"
	"sort"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
)

// Problem is one thing wrong with a policy file, with where it is and how
// to fix it.
type Problem struct {
	File    string `json:"file"`
	Line    int    `json:"line"`
	Column  int    `json:"column"`
	Path    string `json:"path,omitempty"` // e.g. purposes.marketing.notice
	Message string `json:"message"`
	Fix     string `json:"fix,omitempty"`
}

func (p Problem) String() string {
	var b strings.Builder
	b.WriteString(p.File)
	if p.Line > 0 {
		b.WriteString(":" + strconv.Itoa(p.Line))
		if p.Column > 0 {
			b.WriteString(":" + strconv.Itoa(p.Column))
		}
	}
	b.WriteString(": " + p.Message)
	if p.Fix != "" {
		b.WriteString(" (fix: " + p.Fix + ")")
	}
	return b.String()
}

// Problems is every problem found in a policy file; it is the error Parse
// and Load return.
type Problems struct {
	List []Problem
}

// Error prints one problem per line as file:line:col: message (fix: ...).
func (ps *Problems) Error() string {
	lines := make([]string, len(ps.List))
	for i, p := range ps.List {
		lines[i] = p.String()
	}
	return strings.Join(lines, "\n")
}

// pos is a place in the file.
type pos struct{ line, col int }

// decoder turns a YAML node tree into the schema types strictly: unknown
// keys, duplicate keys, aliases and wrong kinds are problems, and the
// position of every path is remembered so later checks can point at it.
type decoder struct {
	file  string
	probs []Problem
	at    map[string]pos
}

func newDecoder(file string) *decoder {
	return &decoder{file: file, at: map[string]pos{}}
}

func (d *decoder) add(n *yaml.Node, path, msg, fix string) {
	p := Problem{File: d.file, Path: path, Message: msg, Fix: fix}
	if n != nil {
		p.Line, p.Column = n.Line, n.Column
	}
	d.probs = append(d.probs, p)
}

// nodeDecoder is implemented by types that decode themselves.
type nodeDecoder interface {
	decodeNode(d *decoder, n *yaml.Node, path string)
}

func isNull(n *yaml.Node) bool {
	return n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null"
}

func kindName(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.ScalarNode:
		if isNull(n) {
			return "nothing"
		}
		return fmt.Sprintf("the value %q", truncate(n.Value, 40))
	}
	return "something else"
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}

func join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

// decode fills v (addressable) from n.
func (d *decoder) decode(n *yaml.Node, path string, v reflect.Value) {
	if _, seen := d.at[path]; !seen || n.Kind == yaml.ScalarNode {
		d.at[path] = pos{n.Line, n.Column}
	}
	if n.Kind == yaml.AliasNode || n.Anchor != "" {
		// Aliases could make a value depend on another place in the file
		// (or on itself); policies are short enough to write out.
		d.add(n, path, "anchors and aliases (&name, *name) are not supported in a policy", "write the value out in full")
		return
	}
	if v.Kind() == reflect.Pointer && v.Type().Implements(reflect.TypeFor[nodeDecoder]()) {
		if v.IsNil() {
			v.Set(reflect.New(v.Type().Elem()))
		}
		v.Interface().(nodeDecoder).decodeNode(d, n, path)
		return
	}
	if v.CanAddr() {
		if nd, ok := v.Addr().Interface().(nodeDecoder); ok {
			nd.decodeNode(d, n, path)
			return
		}
	}
	if isNull(n) {
		// An empty value leaves the zero value, except that an empty
		// optional section ("access:") means the section is present.
		if v.Kind() == reflect.Pointer && v.IsNil() {
			v.Set(reflect.New(v.Type().Elem()))
		}
		return
	}
	switch v.Kind() {
	case reflect.Pointer:
		if v.IsNil() {
			v.Set(reflect.New(v.Type().Elem()))
		}
		d.decode(n, path, v.Elem())
	case reflect.Struct:
		d.decodeStruct(n, path, v)
	case reflect.Slice:
		if n.Kind != yaml.SequenceNode {
			d.add(n, path, fmt.Sprintf("%s must be a list, found %s", path, kindName(n)), "write a list, for example [a, b] or one \"- item\" per line")
			return
		}
		s := reflect.MakeSlice(v.Type(), 0, len(n.Content))
		for i, item := range n.Content {
			e := reflect.New(v.Type().Elem()).Elem()
			d.decode(item, fmt.Sprintf("%s[%d]", path, i), e)
			s = reflect.Append(s, e)
		}
		v.Set(s)
	case reflect.Map:
		if n.Kind != yaml.MappingNode {
			d.add(n, path, fmt.Sprintf("%s must be a mapping, found %s", path, kindName(n)), "write one \"key: value\" per line")
			return
		}
		m := reflect.MakeMapWithSize(v.Type(), len(n.Content)/2)
		seen := map[string]bool{}
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, val := n.Content[i], n.Content[i+1]
			if k.Kind != yaml.ScalarNode || isNull(k) {
				d.add(k, path, fmt.Sprintf("keys in %s must be plain names", path), "write the key as plain text")
				continue
			}
			if seen[k.Value] {
				d.add(k, join(path, k.Value), fmt.Sprintf("%s is given twice in %s", k.Value, path), "remove one of the two entries")
				continue
			}
			seen[k.Value] = true
			e := reflect.New(v.Type().Elem()).Elem()
			p := join(path, k.Value)
			d.decode(val, p, e)
			if val.Kind != yaml.ScalarNode {
				d.at[p] = pos{k.Line, k.Column}
			}
			m.SetMapIndex(reflect.ValueOf(k.Value).Convert(v.Type().Key()), e)
		}
		v.Set(m)
	case reflect.String:
		if n.Kind != yaml.ScalarNode {
			d.add(n, path, fmt.Sprintf("%s must be a single value, found %s", path, kindName(n)), "write a single value on the same line, quoted if it contains a colon")
			return
		}
		v.SetString(n.Value)
	case reflect.Bool:
		switch {
		case n.Kind == yaml.ScalarNode && (n.Value == "true" || n.Value == "false"):
			v.SetBool(n.Value == "true")
		default:
			d.add(n, path, fmt.Sprintf("%s must be true or false, found %s", path, kindName(n)), "write true or false")
		}
	case reflect.Int:
		i, err := strconv.Atoi(n.Value)
		if n.Kind != yaml.ScalarNode || err != nil {
			d.add(n, path, fmt.Sprintf("%s must be a whole number, found %s", path, kindName(n)), "write digits only, e.g. 16")
			return
		}
		v.SetInt(int64(i))
	case reflect.Float64:
		f, err := strconv.ParseFloat(n.Value, 64)
		if n.Kind != yaml.ScalarNode || err != nil {
			d.add(n, path, fmt.Sprintf("%s must be a number, found %s", path, kindName(n)), "write a number, e.g. 1.0")
			return
		}
		v.SetFloat(f)
	default:
		panic("policy: decoder does not handle " + v.Type().String())
	}
}

type fieldInfo struct {
	index int
	keyed bool
}

func structKeys(t reflect.Type) (map[string]fieldInfo, []string) {
	m := map[string]fieldInfo{}
	var names []string
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		tag := f.Tag.Get("yaml")
		if tag == "" || tag == "-" {
			continue
		}
		name, opt, _ := strings.Cut(tag, ",")
		m[name] = fieldInfo{index: i, keyed: opt == "keyed"}
		names = append(names, name)
	}
	return m, names
}

func (d *decoder) decodeStruct(n *yaml.Node, path string, v reflect.Value) {
	where := path
	if where == "" {
		where = "the policy"
	}
	if n.Kind != yaml.MappingNode {
		d.add(n, path, fmt.Sprintf("%s must be a mapping of keys, found %s", where, kindName(n)), "write one \"key: value\" per line")
		return
	}
	keys, names := structKeys(v.Type())
	seen := map[string]bool{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, val := n.Content[i], n.Content[i+1]
		if k.Kind != yaml.ScalarNode || isNull(k) {
			d.add(k, path, fmt.Sprintf("keys in %s must be plain names", where), "write the key as plain text")
			continue
		}
		p := join(path, k.Value)
		fi, ok := keys[k.Value]
		if !ok {
			d.add(k, p, fmt.Sprintf("unknown key %q in %s", k.Value, where), suggest(k.Value, names))
			continue
		}
		if seen[k.Value] {
			d.add(k, p, fmt.Sprintf("%s is given twice", p), "remove one of the two")
			continue
		}
		seen[k.Value] = true
		f := v.Field(fi.index)
		if fi.keyed {
			d.decodeKeyed(k, val, p, f)
		} else {
			d.decode(val, p, f)
		}
		if val.Kind != yaml.ScalarNode {
			d.at[p] = pos{k.Line, k.Column}
		}
	}
}

var idRE = regexp.MustCompile(`^[a-z][a-z0-9]*(-[a-z0-9]+)*$`)

// decodeKeyed reads a mapping "id: {entry}" into a slice of *T whose ID
// field is set from the key, keeping the order of the file.
func (d *decoder) decodeKeyed(key, n *yaml.Node, path string, v reflect.Value) {
	if isNull(n) {
		return
	}
	if n.Kind != yaml.MappingNode {
		d.add(n, path, fmt.Sprintf("%s must map each id to its definition, found %s", path, kindName(n)), "write \"id:\" on its own line, then the definition indented below it")
		return
	}
	s := reflect.MakeSlice(v.Type(), 0, len(n.Content)/2)
	seen := map[string]bool{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, val := n.Content[i], n.Content[i+1]
		p := join(path, k.Value)
		if k.Kind != yaml.ScalarNode || isNull(k) {
			d.add(k, path, fmt.Sprintf("ids in %s must be plain names", path), "write the id as plain text")
			continue
		}
		if seen[k.Value] {
			d.add(k, p, fmt.Sprintf("%s %q is defined twice", singular(path), k.Value), "merge the two definitions")
			continue
		}
		seen[k.Value] = true
		e := reflect.New(v.Type().Elem().Elem())
		e.Elem().FieldByName("ID").SetString(k.Value)
		d.decode(val, p, e.Elem())
		d.at[p] = pos{k.Line, k.Column}
		s = reflect.Append(s, e)
	}
	v.Set(s)
}

func singular(s string) string {
	if t, ok := strings.CutSuffix(s, "ies"); ok {
		return t + "y"
	}
	return strings.TrimSuffix(s, "s")
}

// decodeNode reads a retention rule from its text.
func (r *Retention) decodeNode(d *decoder, n *yaml.Node, path string) {
	if n.Kind != yaml.ScalarNode || isNull(n) {
		d.add(n, path, fmt.Sprintf("retention of %s must be a rule such as \"13 months\", found %s", strings.TrimPrefix(path, "retention."), kindName(n)),
			"write a period (\"30 days\", \"13 months\", \"7 years\", \"13 months, then monthly aggregates\"), account-lifetime, \"account-lifetime + 30 days\" or archive")
		return
	}
	rr, err := ParseRetention(n.Value)
	if err != nil {
		d.add(n, path, fmt.Sprintf("retention of %s: %v", strings.TrimPrefix(path, "retention."), err),
			"write a period (\"30 days\", \"13 months\", \"7 years\", \"13 months, then monthly aggregates\"), account-lifetime, \"account-lifetime + 30 days\" or archive")
		// Keep the entry so the category does not also count as missing.
		rr = Retention{Kind: RetainArchive}
	}
	*r = rr
}

// decodeNode lets a statement be plain text or {id, title, text}.
func (s *Statement) decodeNode(d *decoder, n *yaml.Node, path string) {
	if n.Kind == yaml.ScalarNode && !isNull(n) {
		s.Text = n.Value
		return
	}
	d.decodeStruct(n, path, reflect.ValueOf(s).Elem())
}

// suggest names the closest known key.
func suggest(got string, names []string) string {
	best, bestD := "", 1<<30
	for _, n := range names {
		if dist := levenshtein(got, n); dist < bestD {
			best, bestD = n, dist
		}
	}
	sorted := append([]string(nil), names...)
	sort.Strings(sorted)
	allowed := "allowed keys here: " + strings.Join(sorted, ", ")
	if best != "" && bestD <= max(2, len(got)/3) {
		return fmt.Sprintf("did you mean %q? %s", best, allowed)
	}
	return "remove it; " + allowed
}

// closest returns the candidate nearest to got, or "" when none is close.
func closest(got string, candidates []string) string {
	best, bestD := "", 1<<30
	for _, c := range candidates {
		if dist := levenshtein(got, c); dist < bestD {
			best, bestD = c, dist
		}
	}
	if best != "" && bestD <= max(2, len(got)/3) {
		return best
	}
	return ""
}

func levenshtein(a, b string) int {
	if len(a) > 64 || len(b) > 64 {
		if a == b {
			return 0
		}
		return 64
	}
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}
