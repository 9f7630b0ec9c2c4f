//go:build ignore

/*
 * A stand-in for Windows' bcryptprimitives.dll, for the Wine tests only: it is never shipped.
 *
 * Go's runtime (since Go 1.22) imports ProcessPrng from bcryptprimitives.dll for its random numbers;
 * Wine 8 (Debian 12's) has the DLL without that export, so every Go program fails to start under it.
 * This DLL exports ProcessPrng over RtlGenRandom (SystemFunction036 in advapi32), which Wine has.
 * `make windows` builds it with mingw-w64 and copies it into the test Wine prefix's system32.
 *
 * The build constraint above keeps the go tool from treating this directory as a cgo package.
 */
#include <windows.h>

BOOLEAN WINAPI SystemFunction036(PVOID buffer, ULONG length);

__declspec(dllexport) BOOL WINAPI ProcessPrng(PBYTE data, SIZE_T n) {
  while (n > 0) {
    ULONG chunk = n > 0x7fffffff ? 0x7fffffff : (ULONG)n;
    if (!SystemFunction036(data, chunk)) return FALSE;
    data += chunk;
    n -= chunk;
  }
  return TRUE;
}
