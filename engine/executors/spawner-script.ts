/**
 * The program of the job spawner (engine/executors/spawner.ts), in Python 3.8+ with the standard library only: it
 * starts jobs with posix_spawn (glibc: clone with CLONE_VFORK, no page tables copied), which on the 2-core machine
 * costs 1.9 ms for /bin/true against 4.1 ms for a fork+exec from a small Perl and ~6–20 ms for Node's spawn from
 * pipe's own process (docs/benchmarks.md).
 *
 * Protocol, bytes on its stdin and stdout:
 *   in  `R <id> <n>\n` + n bytes: cwd \0 file \0 argc \0 args... \0 env "K=V"...   start a job
 *   in  `D <id>\n`      stop reading the job's output (a process outside its group holds it open)
 *   out `READY\n`       once, first
 *   out `S <id> <pid>\n`                     started; the job leads its own process group <pid>
 *   out `F <id> <n>\n` + n bytes              could not start (no such cwd or program, not executable): why
 *   out `O <id> <n>\n` + n bytes              output (stdout and stderr share one pipe, in arrival order)
 *   out `X <id> <code|-> <signal|->\n`        exited; its process group has been sent SIGKILL
 *   out `E <id>\n`                            its output reached end of file (or was dropped)
 * When its stdin ends (pipe exited, however it died) or it gets SIGTERM, it SIGKILLs the group of every job it
 * started that has not ended, and exits: no job outlives pipe.
 *
 * A job gets what Node's spawn would give it: the program looked up on the job's own PATH, stdin from /dev/null,
 * every signal at its default disposition and none blocked, no descriptor of pipe's or the spawner's.
 */
export const SPAWNER_SCRIPT = String.raw`
import os, select, signal

# Python 3.8+: without posix_spawn this fails before READY, and pipe starts its jobs itself.
os.posix_spawn, os.POSIX_SPAWN_DUP2, os.POSIX_SPAWN_OPEN

jobs = {}        # id -> [pid, output fd or None, exited]
id_of_pid = {}
id_of_fd = {}
poller = select.poll()
SIGNALS = sorted(s for s in signal.valid_signals() if s not in (signal.SIGKILL, signal.SIGSTOP))

def put(data):
    while data:
        try:
            data = data[os.write(1, data):]
        except OSError:
            kill_all()
            os._exit(1)

def kill_all():
    for job in jobs.values():
        try:
            os.killpg(job[0], signal.SIGKILL)
        except OSError:
            pass

def on_term(signum, frame):
    kill_all()
    os._exit(143)

def finish(jid):
    job = jobs[jid]
    if job[2] and job[1] is None:
        del jobs[jid]

def drop_output(jid):
    job = jobs.get(jid)
    if job is None or job[1] is None:
        return
    fd = job[1]
    poller.unregister(fd)
    del id_of_fd[fd]
    os.close(fd)
    job[1] = None
    put(b'E %d\n' % jid)
    finish(jid)

def fail(jid, why):
    why = why.encode('utf-8', 'replace')
    put(b'F %d %d\n' % (jid, len(why)) + why)

def lookup(file, env):
    """execvp's search, on the job's PATH: the first candidate that is an executable file."""
    if b'/' in file:
        return file
    for d in env.get(b'PATH', b'/usr/local/bin:/usr/bin:/bin').split(b':'):
        path = os.path.join(d or b'.', file)
        if os.path.isfile(path) and os.access(path, os.X_OK):
            return path
    return None

def start(jid, payload):
    fields = payload.split(b'\0')
    cwd, file, argc = fields[0], fields[1], int(fields[2])
    args = fields[3:3 + argc]
    env = dict(kv.split(b'=', 1) for kv in fields[3 + argc:] if b'=' in kv)
    # posix_spawn has no portable chdir: the job inherits the spawner's working directory, entered anew for every
    # job (the same path may name a new directory since the last one: a workspace made again, a link re-pointed).
    try:
        os.chdir(cwd)
    except OSError as e:
        return fail(jid, 'chdir %s: %s' % (os.fsdecode(cwd), e.strerror))
    path = lookup(file, env)
    if path is None:
        return fail(jid, '%s: No such file or directory' % os.fsdecode(file))
    r, w = os.pipe()
    try:
        pid = os.posix_spawn(path, [file] + args, env,
            file_actions=[(os.POSIX_SPAWN_OPEN, 0, '/dev/null', os.O_RDONLY, 0),
                          (os.POSIX_SPAWN_DUP2, w, 1), (os.POSIX_SPAWN_DUP2, w, 2)],
            setpgroup=0, setsigdef=SIGNALS, setsigmask=[])
    except OSError as e:
        os.close(r)
        os.close(w)
        return fail(jid, '%s: %s' % (os.fsdecode(file), e.strerror))
    os.close(w)
    os.set_blocking(r, False)
    jobs[jid] = [pid, r, False]
    id_of_pid[pid] = jid
    id_of_fd[r] = jid
    poller.register(r, select.POLLIN)
    put(b'S %d %d\n' % (jid, pid))

def reap():
    while True:
        try:
            pid, status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return
        jid = id_of_pid.pop(pid, None)
        if jid is None:
            continue
        try:
            os.killpg(pid, signal.SIGKILL)
        except OSError:
            pass
        if os.WIFSIGNALED(status):
            put(b'X %d - %d\n' % (jid, os.WTERMSIG(status)))
        else:
            put(b'X %d %d -\n' % (jid, os.WEXITSTATUS(status)))
        jobs[jid][2] = True
        finish(jid)

def close_inherited():
    # Whatever pipe's process left open without close-on-exec reaches no job: only 0, 1 and 2 stay.
    fds = '/proc/self/fd' if os.path.isdir('/proc/self/fd') else '/dev/fd'
    for name in os.listdir(fds):
        if int(name) > 2:
            try:
                os.close(int(name))
            except OSError:
                pass

def main():
    close_inherited()
    wake_r, wake_w = os.pipe()
    os.set_blocking(wake_r, False)
    os.set_blocking(wake_w, False)
    signal.set_wakeup_fd(wake_w)
    signal.signal(signal.SIGCHLD, lambda signum, frame: None)
    signal.signal(signal.SIGTERM, on_term)
    for s in (signal.SIGINT, signal.SIGQUIT, signal.SIGHUP):
        signal.signal(s, signal.SIG_IGN)
    poller.register(0, select.POLLIN)
    poller.register(wake_r, select.POLLIN)
    put(b'READY\n')
    pending = b''
    while True:
        events = poller.poll()
        reap()
        # Jobs' output first, then commands: a command may close a job's pipe, and a pipe made for a new job may
        # reuse its number, which this round's events must not mistake for the new job's.
        for fd, ev in events:
            if fd in id_of_fd:
                jid = id_of_fd[fd]
                try:
                    data = os.read(fd, 65536)
                except BlockingIOError:
                    continue
                except OSError:
                    data = b''
                if data:
                    put(b'O %d %d\n' % (jid, len(data)) + data)
                else:
                    drop_output(jid)
            elif fd == wake_r:
                try:
                    while os.read(wake_r, 4096):
                        pass
                except BlockingIOError:
                    pass
        if any(fd == 0 for fd, ev in events):
            chunk = os.read(0, 65536)
            if not chunk:
                kill_all()
                os._exit(0)
            pending += chunk
            while True:
                nl = pending.find(b'\n')
                if nl < 0:
                    break
                head = pending[:nl].split(b' ')
                if head[0] == b'R':
                    n = int(head[2])
                    if len(pending) < nl + 1 + n:
                        break
                    payload = pending[nl + 1:nl + 1 + n]
                    pending = pending[nl + 1 + n:]
                    jid = int(head[1])
                    try:
                        start(jid, payload)
                    except Exception as e:
                        # One job's bad request (an env name posix_spawn refuses) fails that job, not the others.
                        fail(jid, '%s: %s' % (type(e).__name__, e))
                else:
                    pending = pending[nl + 1:]
                    if head[0] == b'D':
                        drop_output(int(head[1]))

main()
`;
