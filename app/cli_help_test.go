package app

import (
	"bytes"
	"context"
	"flag"
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// helpEnv is an environment that reads no variable, so no help depends on the machine's.
func helpEnv(stdout, stderr *bytes.Buffer) env {
	return env{stdout: stdout, stderr: stderr, getenv: func(string) string { return "" }}
}

// runHelp runs authkeeper with args and returns its exit status, stdout and stderr.
func runHelp(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var out, errOut bytes.Buffer
	code := run(context.Background(), append([]string{"authkeeper"}, args...), helpEnv(&out, &errOut))
	return code, out.String(), errOut.String()
}

func overview(t *testing.T) string {
	t.Helper()
	code, out, errOut := runHelp(t, "help")
	if code != 0 || errOut != "" {
		t.Fatalf("help: exit %d, stderr %q", code, errOut)
	}
	return out
}

// mentions reports whether text names word as a whole word (HOME is not in COPILOT_HOME).
func mentions(text, word string) bool {
	return regexp.MustCompile(`(^|[^A-Za-z0-9_-])` + regexp.QuoteMeta(word) + `($|[^A-Za-z0-9_])`).MatchString(text)
}

func TestHelpListsEveryCommandTheDispatcherKnows(t *testing.T) {
	help := overview(t)
	for _, c := range commands() {
		t.Run(c.name, func(t *testing.T) {
			if !regexp.MustCompile(`(?m)^  ` + regexp.QuoteMeta(c.name) + `( |$)`).MatchString(help) {
				t.Errorf("help does not list %s:\n%s", c.name, help)
			}
			if !strings.Contains(help, c.summary) {
				t.Errorf("help does not give %s's summary %q", c.name, c.summary)
			}
			for _, a := range append([]string{c.name}, c.aliases...) {
				if got, ok := lookup(a); !ok || got.name != c.name {
					t.Errorf("%q does not dispatch to %s", a, c.name)
				}
			}
		})
	}
}

func TestCommandHelpGoesToStdoutAndExits0(t *testing.T) {
	for _, c := range commands() {
		want := "usage: " + synopsis(c) + "\n"
		for _, args := range [][]string{{c.name, "--help"}, {c.name, "-h"}, {"help", c.name}} {
			t.Run(strings.Join(args, " "), func(t *testing.T) {
				code, out, errOut := runHelp(t, args...)
				if code != 0 || errOut != "" {
					t.Fatalf("exit %d, stderr %q", code, errOut)
				}
				if !strings.HasPrefix(out, want) {
					t.Errorf("help starts %q, want %q", out[:min(len(out), 80)], want)
				}
				if strings.Contains(out, "Usage of") {
					t.Errorf("Go's bare flag usage leaked: %q", out)
				}
			})
		}
	}
}

func TestEveryFlagIsInItsCommandsHelpAndTheOverview(t *testing.T) {
	help := overview(t)
	for _, c := range commands() {
		fs := flagsOf(context.Background(), c, func(string) string { return "" })
		if fs == nil {
			t.Errorf("%s --help does not reach its flags (see command's contract)", c.name)
			continue
		}
		_, own, _ := runHelp(t, c.name, "--help")
		var names []string
		fs.VisitAll(func(f *flag.Flag) { names = append(names, f.Name) })
		for _, name := range names {
			t.Run(c.name+" --"+name, func(t *testing.T) {
				if !regexp.MustCompile(`(?m)^  --` + regexp.QuoteMeta(name) + `( |$)`).MatchString(own) {
					t.Errorf("%s --help does not list --%s:\n%s", c.name, name, own)
				}
				if !mentions(help, "--"+name) {
					t.Errorf("help does not list %s's --%s", c.name, name)
				}
			})
		}
	}
}

// TestEveryFlagSetBelongsToACommand reads the source: a flag set made for a command the table does not
// know (a new subcommand with flags of its own) would have flags no help shows.
func TestEveryFlagSetBelongsToACommand(t *testing.T) {
	var names []string
	for _, f := range parseSource(t, ".") {
		ast.Inspect(f, func(n ast.Node) bool {
			call, ok := n.(*ast.CallExpr)
			if !ok || len(call.Args) == 0 {
				return true
			}
			if id, ok := call.Fun.(*ast.Ident); ok && id.Name == "newFlags" {
				// The first string literal in the name: "add", or "busy " in "busy "+sub. A parameter
				// (cmdSimple's verb, serve's and tray's name) is named by callers the table lists.
				ast.Inspect(call.Args[0], func(n ast.Node) bool {
					if lit, ok := n.(*ast.BasicLit); ok && lit.Kind == token.STRING {
						s, _ := strconv.Unquote(lit.Value)
						names = append(names, strings.Fields(s)[0])
						return false
					}
					return true
				})
			}
			return true
		})
	}
	if len(names) < 5 {
		t.Fatalf("found only %v newFlags calls: the scan is broken", names)
	}
	for _, n := range names {
		if _, ok := lookup(n); !ok {
			t.Errorf("newFlags(%q) is for no command in commands()", n)
		}
	}
}

// TestHelpListsEveryEnvironmentVariable finds the variables in the source, so that a new one cannot be
// left out of the help: every string literal passed to getenv/Getenv/LookupEnv, and every
// AUTHKEEPER_*/CLAUDE_* literal (the env… constants that secretInput reads).
func TestHelpListsEveryEnvironmentVariable(t *testing.T) {
	found := map[string]string{} // name → where
	named := regexp.MustCompile(`^(AUTHKEEPER|CLAUDE)_[A-Z0-9_]+$`)
	fset := token.NewFileSet()
	for _, dir := range []string{".", "../tray", "../keychain", "../oauth", ".."} {
		for _, f := range parseSourceTree(t, fset, dir) {
			ast.Inspect(f, func(n ast.Node) bool {
				switch n := n.(type) {
				case *ast.CallExpr:
					if isGetenv(n.Fun) && len(n.Args) == 1 {
						if lit, ok := n.Args[0].(*ast.BasicLit); ok && lit.Kind == token.STRING {
							s, _ := strconv.Unquote(lit.Value)
							found[s] = fset.Position(lit.Pos()).String()
						}
					}
				case *ast.BasicLit:
					if s, err := strconv.Unquote(n.Value); n.Kind == token.STRING && err == nil && named.MatchString(s) {
						found[s] = fset.Position(n.Pos()).String()
					}
				}
				return true
			})
		}
	}
	for _, want := range []string{"AUTHKEEPER_PROXY_ADDR", "AUTHKEEPER_CLIENT_SECRET", "CLAUDE_CODE_MCP_SERVER_NAME"} {
		if _, ok := found[want]; !ok {
			t.Fatalf("the scan did not find %s: it is broken (found %v)", want, found)
		}
	}
	help := overview(t)
	listed := map[string]bool{}
	for _, v := range envVars {
		for _, name := range strings.Split(v.name, ", ") {
			listed[name] = true
			if _, ok := found[name]; !ok {
				t.Errorf("envVars lists %s, which the program no longer reads", name)
			}
		}
		for _, c := range v.cmds {
			if _, ok := lookup(c); !ok {
				t.Errorf("envVars: %s is read by %q, which is no command", v.name, c)
				continue
			}
			if _, out, _ := runHelp(t, c, "--help"); !strings.Contains(out, v.name) {
				t.Errorf("%s --help does not list %s", c, v.name)
			}
		}
	}
	for name, where := range found {
		if !listed[name] {
			t.Errorf("%s (read at %s) is not in envVars", name, where)
		}
		if !mentions(help, name) {
			t.Errorf("help does not mention %s (read at %s)", name, where)
		}
	}
}

func isGetenv(fun ast.Expr) bool {
	switch f := fun.(type) {
	case *ast.Ident:
		return f.Name == "getenv"
	case *ast.SelectorExpr:
		return slices.Contains([]string{"getenv", "Getenv", "LookupEnv"}, f.Sel.Name)
	}
	return false
}

// parseSource parses the non-test Go files of dir (not its subdirectories).
func parseSource(t *testing.T, dir string) []*ast.File {
	t.Helper()
	return parseFiles(t, token.NewFileSet(), dir, false)
}

// parseSourceTree parses the non-test Go files under dir; ".." stands for the module root's own files
// only (main.go), and internal/ (the test bench) is left out.
func parseSourceTree(t *testing.T, fset *token.FileSet, dir string) []*ast.File {
	t.Helper()
	return parseFiles(t, fset, dir, dir != "..")
}

func parseFiles(t *testing.T, fset *token.FileSet, dir string, recurse bool) []*ast.File {
	t.Helper()
	var files []*ast.File
	err := filepath.WalkDir(dir, func(path string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			if path != dir && (!recurse || d.Name() == "internal" || d.Name() == "testdata") {
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return nil
		}
		f, err := parser.ParseFile(fset, path, nil, parser.SkipObjectResolution)
		if err != nil {
			return err
		}
		files = append(files, f)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return files
}

func TestUnknownCommandPrintsUsageOnStderrAndExits2(t *testing.T) {
	for _, tt := range []struct {
		args []string
		want string
	}{
		{[]string{"frobnicate"}, `unknown command "frobnicate"`},
		{[]string{"help", "frobnicate"}, `no command "frobnicate"`},
	} {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			code, out, errOut := runHelp(t, tt.args...)
			if code != 2 || out != "" {
				t.Errorf("exit %d, stdout %q; want 2 and nothing", code, out)
			}
			if !strings.Contains(errOut, tt.want) {
				t.Errorf("stderr %q does not say %q", errOut, tt.want)
			}
		})
	}
	if _, _, errOut := runHelp(t, "frobnicate"); !strings.Contains(errOut, "Commands:") {
		t.Errorf("an unknown command's stderr has no usage: %q", errOut)
	}
}

func TestWrongFlagSaysSoOnStderrAndExits2(t *testing.T) {
	for _, args := range [][]string{{"add", "https://mcp.example", "--bogus"}, {"busy", "start", "--bogus"}, {"status", "--bogus"},
		{"serve", "--bogus"}, {"tray", "--bogus"}, {"clients", "--bogus"}, {"bridge", "--bogus"}} {
		t.Run(strings.Join(args, " "), func(t *testing.T) {
			code, out, errOut := runHelp(t, args...)
			if code != 2 || out != "" {
				t.Errorf("exit %d, stdout %q; want 2 and nothing", code, out)
			}
			for _, want := range []string{"-bogus", "usage: authkeeper " + args[0], "authkeeper help " + args[0]} {
				if !strings.Contains(errOut, want) {
					t.Errorf("stderr %q does not say %q", errOut, want)
				}
			}
		})
	}
}
