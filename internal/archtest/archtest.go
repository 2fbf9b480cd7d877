// Package archtest checks the dependency rules of DESIGN.md section 14:
// which packages of the module must not import which others. The rules
// live in one plain text file, rules.txt beside this one (its header
// describes the format), and TestDependencyRules checks every package of
// the module against them, so `go test ./...` and `make test` fail on a
// forbidden import.
//
// Imports are read with go/parser from every non-test .go file of every
// directory of the module, whatever its build constraints: a forbidden
// import behind a build tag is still forbidden. Test files are left out,
// so tests may import what they need to boot the real thing.
package archtest

import (
	"bufio"
	"fmt"
	"go/parser"
	"go/token"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
)

// Rule says which packages (Packages, less Except) must not import which
// (Forbid, less Allow). With Transitive, they must not reach a forbidden
// package through other packages of the module either. Patterns are
// module-relative: "internal/bus/..." matches internal/bus and every
// package below it, "..." every package of the module, and anything else
// the one package it names. A pattern that matches no package is not an
// error: rules may name packages that do not exist yet. A Forbid pattern
// "X/..." does not forbid imports between packages under X.
type Rule struct {
	N          int
	Why        string
	Packages   []string
	Except     []string
	Forbid     []string
	Allow      []string
	Transitive bool
}

// Known is a violation the rules tolerate for now, with the note that says
// when it goes away.
type Known struct {
	Pkg, Imports string
	Rule         int
	Note         string
}

// Rules is a parsed rules file.
type Rules struct {
	Rules []Rule
	Known []Known
}

// Violation is an import a rule forbids. Via lists the packages between
// Pkg and Imports when the import is indirect (Transitive rules).
type Violation struct {
	Pkg, Imports string
	Via          []string
	Rule         *Rule
}

// String formats as "internal/x imports forbidden internal/y (rule 3: why)",
// naming the path when the import is indirect.
func (v Violation) String() string {
	via := ""
	if len(v.Via) > 0 {
		via = " through " + strings.Join(v.Via, " -> ")
	}
	return fmt.Sprintf("%s imports forbidden %s%s (rule %d: %s)", v.Pkg, v.Imports, via, v.Rule.N, v.Rule.Why)
}

func (v Violation) key() string { return fmt.Sprintf("%s %s %d", v.Pkg, v.Imports, v.Rule.N) }

func (k Known) key() string { return fmt.Sprintf("%s %s %d", k.Pkg, k.Imports, k.Rule) }

// String formats a known violation as it is written in the rules file.
func (k Known) String() string {
	return fmt.Sprintf("%s imports %s (rule %d) %s", k.Pkg, k.Imports, k.Rule, k.Note)
}

var (
	ruleLine  = regexp.MustCompile(`^rule (\d+): (.+)$`)
	knownLine = regexp.MustCompile(`^known: (\S+) imports (\S+) \(rule (\d+)\) +(TODO\(#\d+\): .+)$`)
	fieldLine = regexp.MustCompile(`^(packages|except|forbid|allow|transitive):(.*)$`)
)

// Parse reads a rules file (see rules.txt for the format).
func Parse(r io.Reader) (*Rules, error) {
	var rs Rules
	var cur *Rule
	var field string
	seen := map[int]bool{}
	sc := bufio.NewScanner(r)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		fail := func(format string, args ...any) error {
			return fmt.Errorf("line %d: %s", n, fmt.Sprintf(format, args...))
		}
		if m := ruleLine.FindStringSubmatch(line); m != nil {
			num, _ := strconv.Atoi(m[1])
			if seen[num] {
				return nil, fail("rule %d is defined twice", num)
			}
			seen[num] = true
			rs.Rules = append(rs.Rules, Rule{N: num, Why: m[2]})
			cur, field = &rs.Rules[len(rs.Rules)-1], ""
			continue
		}
		if m := knownLine.FindStringSubmatch(line); m != nil {
			num, _ := strconv.Atoi(m[3])
			rs.Known = append(rs.Known, Known{Pkg: m[1], Imports: m[2], Rule: num, Note: m[4]})
			cur, field = nil, ""
			continue
		}
		if strings.HasPrefix(line, "known:") {
			return nil, fail(`want "known: PKG imports PKG (rule N) TODO(#issue): remove when ..."`)
		}
		if cur == nil {
			return nil, fail("%q is outside a rule", line)
		}
		values := line
		if m := fieldLine.FindStringSubmatch(line); m != nil {
			field, values = m[1], m[2]
		} else if field == "" {
			return nil, fail("%q: want packages:, except:, forbid:, allow: or transitive:", line)
		}
		for _, v := range strings.Fields(values) {
			switch field {
			case "packages":
				cur.Packages = append(cur.Packages, v)
			case "except":
				cur.Except = append(cur.Except, v)
			case "forbid":
				cur.Forbid = append(cur.Forbid, v)
			case "allow":
				cur.Allow = append(cur.Allow, v)
			case "transitive":
				if v != "yes" && v != "no" {
					return nil, fail("transitive: want yes or no, not %q", v)
				}
				cur.Transitive = v == "yes"
			}
		}
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	for _, r := range rs.Rules {
		if len(r.Packages) == 0 || len(r.Forbid) == 0 {
			return nil, fmt.Errorf("rule %d: needs both a packages and a forbid field", r.N)
		}
	}
	for _, k := range rs.Known {
		if !seen[k.Rule] {
			return nil, fmt.Errorf("known violation %s names no rule", k)
		}
	}
	return &rs, nil
}

// ParseFile reads a rules file from disk.
func ParseFile(name string) (*Rules, error) {
	f, err := os.Open(name)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	rs, err := Parse(f)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	return rs, nil
}

// match reports whether a module-relative package path matches pattern.
func match(pattern, pkg string) bool {
	if pattern == "..." {
		return true
	}
	if root, ok := strings.CutSuffix(pattern, "/..."); ok {
		return pkg == root || strings.HasPrefix(pkg, root+"/")
	}
	return pkg == pattern
}

func matchAny(patterns []string, pkg string) bool {
	return slices.ContainsFunc(patterns, func(p string) bool { return match(p, pkg) })
}

func (r *Rule) applies(pkg string) bool {
	return matchAny(r.Packages, pkg) && !matchAny(r.Except, pkg)
}

// forbids reports whether the rule forbids pkg to import imp. A forbid
// pattern "X/..." (other than "...") does not forbid imports between two
// packages under X: a center may import its own subpackages.
func (r *Rule) forbids(pkg, imp string) bool {
	if !matchAny(r.Forbid, imp) || matchAny(r.Allow, imp) {
		return false
	}
	for _, p := range r.Forbid {
		if p != "..." && strings.HasSuffix(p, "/...") && match(p, pkg) && match(p, imp) {
			return false
		}
	}
	return true
}

// Graph maps each package of a module (module-relative path, "." for the
// root) to the packages of the same module it imports, sorted.
type Graph map[string][]string

// Load reads the imports of every package of the module rooted at root.
// Directories named testdata or vendor, or starting with "." or "_", and
// nested modules are skipped, as the go command does; so are files
// constrained by "//go:build ignore".
func Load(root string) (module string, g Graph, err error) {
	mod, err := os.ReadFile(filepath.Join(root, "go.mod"))
	if err != nil {
		return "", nil, err
	}
	for _, line := range strings.Split(string(mod), "\n") {
		if rest, ok := strings.CutPrefix(strings.TrimSpace(line), "module "); ok {
			module = strings.Trim(strings.TrimSpace(rest), `"`)
			break
		}
	}
	if module == "" {
		return "", nil, fmt.Errorf("%s/go.mod: no module line", root)
	}
	g = Graph{}
	fset := token.NewFileSet()
	err = filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			name := d.Name()
			if path != root && (name == "testdata" || name == "vendor" || name == "node_modules" ||
				strings.HasPrefix(name, ".") || strings.HasPrefix(name, "_")) {
				return filepath.SkipDir
			}
			if path != root {
				if _, err := os.Stat(filepath.Join(path, "go.mod")); err == nil {
					return filepath.SkipDir
				}
			}
			return nil
		}
		if !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return nil
		}
		f, err := parser.ParseFile(fset, path, nil, parser.ImportsOnly|parser.ParseComments)
		if err != nil {
			return err
		}
		for _, cg := range f.Comments {
			if cg.Pos() > f.Package {
				break
			}
			for _, c := range cg.List {
				if strings.TrimSpace(c.Text) == "//go:build ignore" {
					return nil
				}
			}
		}
		rel, err := filepath.Rel(root, filepath.Dir(path))
		if err != nil {
			return err
		}
		pkg := filepath.ToSlash(rel)
		imps := g[pkg]
		for _, is := range f.Imports {
			p, err := strconv.Unquote(is.Path.Value)
			if err != nil {
				return fmt.Errorf("%s: %w", path, err)
			}
			if p == module {
				p = "."
			} else if q, ok := strings.CutPrefix(p, module+"/"); ok {
				p = q
			} else {
				continue
			}
			if !slices.Contains(imps, p) {
				imps = append(imps, p)
			}
		}
		sort.Strings(imps)
		g[pkg] = imps
		return nil
	})
	return module, g, err
}

// Check returns every import of g that a rule forbids, by rule, then by
// importing package. For a Transitive rule, a forbidden package reached
// only through others is reported once, along a shortest path.
func Check(rules []Rule, g Graph) []Violation {
	var out []Violation
	for i := range rules {
		r := &rules[i]
		for _, pkg := range sortedKeys(g) {
			if !r.applies(pkg) {
				continue
			}
			for _, imp := range g[pkg] {
				if r.forbids(pkg, imp) {
					out = append(out, Violation{Pkg: pkg, Imports: imp, Rule: r})
				}
			}
			if r.Transitive {
				out = append(out, indirect(r, g, pkg)...)
			}
		}
	}
	return out
}

// indirect walks g breadth first from pkg through packages the rule does
// not forbid, and reports the forbidden ones reached at depth two or more.
func indirect(r *Rule, g Graph, pkg string) []Violation {
	prev := map[string]string{pkg: ""}
	queue := []string{pkg}
	var out []Violation
	for len(queue) > 0 {
		p := queue[0]
		queue = queue[1:]
		for _, imp := range g[p] {
			if _, ok := prev[imp]; ok {
				continue
			}
			prev[imp] = p
			if !r.forbids(pkg, imp) {
				queue = append(queue, imp)
				continue
			}
			if p == pkg {
				continue // a direct import, reported by Check
			}
			var via []string
			for q := p; q != pkg; q = prev[q] {
				via = append([]string{q}, via...)
			}
			out = append(out, Violation{Pkg: pkg, Imports: imp, Via: via, Rule: r})
		}
	}
	return out
}

// Reconcile splits violations into those the known list tolerates and the
// others, and returns the known violations that no longer occur (which
// must leave the list, so that it cannot go stale).
func (rs *Rules) Reconcile(found []Violation) (unexpected, tolerated []Violation, stale []Known) {
	known := map[string]bool{}
	for _, k := range rs.Known {
		known[k.key()] = true
	}
	occurs := map[string]bool{}
	for _, v := range found {
		occurs[v.key()] = true
		if known[v.key()] {
			tolerated = append(tolerated, v)
		} else {
			unexpected = append(unexpected, v)
		}
	}
	for _, k := range rs.Known {
		if !occurs[k.key()] {
			stale = append(stale, k)
		}
	}
	return unexpected, tolerated, stale
}

func sortedKeys(g Graph) []string {
	keys := make([]string, 0, len(g))
	for k := range g {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
