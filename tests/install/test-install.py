#!/usr/bin/env python3
"""test-install.py - `meson install --destdir` into a temporary root, then check what an
operator and a C developer get: the exact file list; a program built against the
installed tree with pkg-config that opens a store and enqueues; the shared library's
soname and that it exports exactly the obx_* functions the public headers declare; the
unit's paths; the man pages; the bash completion (commands, states, sink names).

usage: test-install.py BUILD_ROOT PREFIX BINDIR SBINDIR LIBDIR INCLUDEDIR DATADIR MANDIR
       UNITDIR SCDOC(yes|no) SANITIZE (from tests/install/meson.build)
"""
import os
import re
import shutil
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
SRC = os.path.dirname(os.path.dirname(HERE))


def run(cmd, **kw):
    p = subprocess.run(cmd, capture_output=True, text=True, **kw)
    if p.returncode != 0:
        sys.exit(f"FAIL: {' '.join(cmd)} exited {p.returncode}\n{p.stdout}\n{p.stderr}")
    return p.stdout


def rel(prefix, d):
    """An install dir relative to the destdir root (meson dirs may be absolute)."""
    return os.path.join(prefix, d).lstrip('/')


def main():
    (build, prefix, bindir, sbindir, libdir, includedir, datadir, mandir, unitdir, scdoc,
     sanitize) = sys.argv[1:12]
    failures = []

    def check(ok, what):
        print(("ok   " if ok else "FAIL ") + what)
        if not ok:
            failures.append(what)

    tmp = tempfile.mkdtemp(prefix='outbox-install-')
    try:
        root = os.path.join(tmp, 'root')
        run(['meson', 'install', '-C', build, '--no-rebuild', '--quiet', '--destdir', root])
        files = set()
        for d, _, names in os.walk(root):
            for n in names:
                files.add(os.path.relpath(os.path.join(d, n), root))
        lib = rel(prefix, libdir)
        doc = rel(prefix, os.path.join(datadir, 'doc', 'outbox'))
        want = {
            rel(prefix, bindir) + '/outboxctl',
            rel(prefix, sbindir) + '/outboxd',
            lib + '/liboutbox.so', lib + '/liboutbox.so.0', lib + '/liboutbox.so.0.1.0',
            lib + '/pkgconfig/outbox.pc',
            rel(prefix, includedir) + '/outbox/outbox.h',
            rel(prefix, includedir) + '/outbox/version.h',
            rel(prefix, unitdir) + '/outboxd.service',
            doc + '/README.md', doc + '/examples/outboxd.example.yaml',
            rel(prefix, datadir) + '/bash-completion/completions/outboxctl',
            rel(prefix, datadir) + '/zsh/vendor-completions/_outboxctl',
        }
        if scdoc == 'yes':
            man = rel(prefix, mandir)
            want |= {man + '/man8/outboxd.8', man + '/man1/outboxctl.1',
                     man + '/man5/outboxd.yaml.5'}
        else:
            print('note: scdoc not found at configure time: man pages not built')
        check(files == want, 'installed files are exactly the expected ones'
              + (f'; missing {sorted(want - files)}, unexpected {sorted(files - want)}'
                 if files != want else ''))

        # The library: soname, and exports = the functions the public headers declare.
        so = os.path.join(root, lib, 'liboutbox.so.0.1.0')
        dyn = run(['readelf', '-d', so])
        check('Library soname: [liboutbox.so.0]' in dyn, 'soname is liboutbox.so.0')
        nm = run(['nm', '-D', '--defined-only', so])
        exported = {l.split()[-1] for l in nm.splitlines()
                    if l.split() and l.split()[-2] in ('T', 'W', 'D', 'B', 'R')
                    # ASan's one-definition-rule markers for exported globals
                    and not l.split()[-1].startswith('__odr_asan.')}
        headers = ''
        for h in ('outbox.h', 'version.h'):
            with open(os.path.join(root, rel(prefix, includedir), 'outbox', h)) as f:
                headers += f.read()
        declared = set(re.findall(r'\b(obx_[a-z0-9_]+)\s*[([]', headers))
        bad = sorted(s for s in exported if not s.startswith('obx_'))
        check(not bad, f'only obx_* symbols exported (others: {bad[:10]})')
        check(exported == declared,
              'exported symbols = functions declared in the public headers'
              + (f'; not exported {sorted(declared - exported)}, undeclared '
                 f'{sorted(exported - declared)}' if exported != declared else ''))
        internal = sorted(s for s in exported if s.startswith('obx__'))
        check(not internal, f'internal obx__* symbols stay hidden {internal[:10]}')

        # A program built the way README says, against the installed tree only.
        env = dict(os.environ, PKG_CONFIG_SYSROOT_DIR=root,
                   PKG_CONFIG_PATH=os.path.join(root, lib, 'pkgconfig'),
                   PKG_CONFIG_LIBDIR=os.path.join(root, lib, 'pkgconfig'))
        flags = run(['pkg-config', '--cflags', '--libs', 'outbox'], env=env).split()
        check(any(f.startswith('-I' + root) for f in flags) and '-loutbox' in flags,
              f'pkg-config points into the installed tree: {" ".join(flags)}')
        app = os.path.join(tmp, 'app')
        cc = os.environ.get('CC', 'cc')
        san = [f'-fsanitize={sanitize}'] if sanitize not in ('', 'none') else []
        run([cc, '-std=c11', '-Wall', '-Werror', *san, os.path.join(HERE, 'app.c'), '-o', app,
             *flags], env=env)
        needed = run(['readelf', '-d', app])
        check('Shared library: [liboutbox.so.0]' in needed, 'the program links liboutbox.so.0')
        store = os.path.join(tmp, 'store')
        out = run([app, store], env=dict(os.environ, LD_LIBRARY_PATH=os.path.join(root, lib)))
        check(out.startswith('enqueued 1 version 0.1.0'), f'the program enqueued: {out.strip()}')
        check(os.path.exists(os.path.join(store, 'data.mdb')), 'the store was created')

        # The unit names this prefix's binary and config.
        with open(os.path.join(root, rel(prefix, unitdir), 'outboxd.service')) as f:
            unit = f.read()
        sysconf = '/etc' if prefix == '/usr' else os.path.join(prefix, 'etc')
        check(f'ExecStart={os.path.join(prefix, sbindir)}/outboxd --config '
              f'{sysconf}/outbox/outboxd.yaml' in unit, 'unit ExecStart uses the prefix')
        check('@' not in re.sub(r'#.*', '', unit), 'no unsubstituted @var@ in the unit')

        # systemd-analyze: the unit as installed (its ExecStart pointed into the temp root,
        # where the binary is), man pages looked up there; hardening exposure at most 4.0.
        sa = shutil.which('systemd-analyze')
        if not sa:
            print('skip: systemd-analyze is not installed (Debian package systemd): '
                  'unit not verified')
        else:
            udir = os.path.join(tmp, 'unit')
            os.mkdir(udir)
            with open(os.path.join(udir, 'outboxd.service'), 'w') as f:
                f.write(unit.replace(f'ExecStart={os.path.join(prefix, sbindir)}/',
                                     f'ExecStart={os.path.join(root, rel(prefix, sbindir))}/'))
            senv = dict(os.environ, MANPATH=os.path.join(root, rel(prefix, mandir)))
            v = subprocess.run([sa, 'verify', os.path.join(udir, 'outboxd.service')],
                               capture_output=True, text=True, env=senv)
            check(v.returncode == 0 and not v.stderr.strip(),
                  f'systemd-analyze verify is clean {v.stderr.strip()}')
            sec = subprocess.run([sa, 'security', '--offline=yes', '--threshold=40',
                                  os.path.join(udir, 'outboxd.service')],
                                 capture_output=True, text=True, env=senv)
            check(sec.returncode == 0, 'systemd-analyze security: exposure <= 4.0 ' +
                  (sec.stdout.strip().splitlines() or [''])[-1])

        # Installed binaries run.
        ver = run([os.path.join(root, rel(prefix, sbindir), 'outboxd'), '--version'])
        check(ver.strip() == 'outboxd 0.1.0', f'installed outboxd runs: {ver.strip()}')

        if scdoc == 'yes' and shutil.which('man'):
            page = run(['man', '-l', os.path.join(root, rel(prefix, mandir), 'man8', 'outboxd.8')],
                       env=dict(os.environ, MANWIDTH='80'))
            check('NOTIFY_SOCKET' in page and 'EXIT STATUS' in page, 'outboxd(8) renders')

        # bash completion: commands, states and the sinks of a config.
        comp = os.path.join(root, rel(prefix, datadir), 'bash-completion/completions/outboxctl')
        cfg = os.path.join(tmp, 'c.yaml')
        with open(cfg, 'w') as f:
            f.write('audit:\n  sinks:\n    webhook:\n      url: http://x/\n'
                    'sinks:\n  - name: slack-prod\n    url: http://y/\n'
                    '  - name: "pager"\n    url: http://z/\n')

        def complete(*words):
            script = (f'source {comp}\nCOMP_WORDS=(outboxctl {" ".join(words)})\n'
                      'COMP_CWORD=$((${#COMP_WORDS[@]} - 1))\n_outboxctl\n'
                      'printf "%s\\n" "${COMPREPLY[@]}"\n')
            return sorted(run(['bash', '-c', script]).split())

        check(complete('re') == ['render', 'replay', 'resume'], 'bash: completes commands')
        check(complete('list', '--state', 'd') == ['dead', 'delivered'], 'bash: completes states')
        got = complete('--config', cfg, 'list', '--sink', "''")
        check(got == ['pager', 'slack-prod', 'webhook'], f'bash: sink names from the config: {got}')
        check('--dry-run' in complete('replay', '--d'), 'bash: completes a command\'s options')
        got = complete('--config', cfg, 'pause', "''")
        check(got == ['pager', 'slack-prod', 'webhook'], f'bash: pause completes sink names: {got}')

        # zsh completion: parses, and reads the same sink names (its completion functions
        # stubbed: _describe prints the candidates it is given).
        zcomp = os.path.join(root, rel(prefix, datadir), 'zsh/vendor-completions/_outboxctl')
        run(['zsh', '-n', zcomp])
        script = ('function _arguments { return 1 }; function _describe { print -l ${(P)4} }\n'
                  f'source {zcomp}\ntypeset -A opt_args; opt_args[--config]={cfg}\n'
                  '_outboxctl_sinks\n')
        got = sorted(run(['zsh', '-f', '-c', script]).split())
        check(got == ['pager', 'slack-prod', 'webhook'], f'zsh: sink names from the config: {got}')
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    if failures:
        sys.exit(f'{len(failures)} check(s) failed')


if __name__ == '__main__':
    main()
