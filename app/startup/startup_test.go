package startup

import (
	"go/ast"
	"go/parser"
	"go/token"
	"runtime/debug"
	"testing"
)

// TestResumeTurnsTheCollectorBackOn: the collector is off once this package has initialized, and
// Resume restores the setting the program started with.
func TestResumeTurnsTheCollectorBackOn(t *testing.T) {
	if gcPercent < 0 {
		t.Skip("GOGC=off: nothing to restore")
	}
	if now := debug.SetGCPercent(-1); now != -1 {
		t.Fatalf("the collector was on during initialization (GC percent %d)", now)
	}
	Resume()
	if now := debug.SetGCPercent(gcPercent); now != gcPercent {
		t.Errorf("after Resume the GC percent is %d, want %d", now, gcPercent)
	}
}

// TestMainResumesFirst: main's first statement is startup.Resume(); without it nothing would ever be
// collected.
func TestMainResumesFirst(t *testing.T) {
	f, err := parser.ParseFile(token.NewFileSet(), "../../main.go", nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range f.Decls {
		fn, ok := d.(*ast.FuncDecl)
		if !ok || fn.Name.Name != "main" {
			continue
		}
		if len(fn.Body.List) > 0 {
			if es, ok := fn.Body.List[0].(*ast.ExprStmt); ok {
				if call, ok := es.X.(*ast.CallExpr); ok {
					if sel, ok := call.Fun.(*ast.SelectorExpr); ok && sel.Sel.Name == "Resume" {
						if x, ok := sel.X.(*ast.Ident); ok && x.Name == "startup" {
							return
						}
					}
				}
			}
		}
		t.Fatal("main's first statement is not startup.Resume()")
	}
	t.Fatal("no func main in main.go")
}
