package policy

// ProblemAt returns a problem placed at path in the policy file (or at its
// nearest ancestor), for checks that need more than the policy: the
// retention sweep checks the policy against the registry's tables.
func (p *Policy) ProblemAt(path, msg, fix string) Problem {
	c := &checker{p: p}
	ps := c.where(path)
	return Problem{File: p.file, Line: ps.line, Column: ps.col, Path: path, Message: msg, Fix: fix}
}
