// Package wine runs authkeeper's Windows build under Wine on this Linux machine, from Linux-side Go
// tests (the package has only tests, built for linux). `make windows` builds what they run and
// `make test` hands it in through AUTHKEEPER_WINDOWS_DIR and AUTHKEEPER_WINEPREFIX:
//
//   - the Windows test binaries of the packages listed in the Makefile's WINDOWS_TEST_PKGS (oauth,
//     keychain, app/control, app/engine): each runs under wine with its package directory as the working
//     directory, and starts its Linux peers (node's oidc-provider, the MCP servers) through the
//     spawner of internal/testbed, since a Windows program cannot start a Linux one under Wine;
//   - the real tray exe, bin/windows/authkeeper.exe, end to end: `serve`, a device-code sign-in
//     completed on the Linux side, `status` over the control pipe, and MCP tool calls from Linux
//     through its proxy to a Linux MCP server with a token from the Linux authorization server;
//   - the exe's console: linked for the GUI subsystem, it still prints when started from a console
//     with no standard handles (testdata/launch starts it so);
//   - the tray itself on a private Xvfb: its icon in Wine's system tray window and its menu, with
//     screenshots.
//
// The Wine prefix is Debian's Wine 8 with one addition, bcryptprimitives.dll built from
// bcryptprimitives.c: Go's runtime needs its ProcessPrng, which Wine 8 lacks. Each run of the exe
// gets its own %APPDATA% (a Linux temporary directory) for its config, credentials and audit log. What
// Wine 8 cannot do (no AF_UNIX sockets, no FileDispositionInformationEx for os.RemoveAll, no starting
// Linux programs) and what is therefore not verified is listed in the README.
//
// A missing artefact or program fails the tests under CI and skips them, saying why, elsewhere.
package wine
