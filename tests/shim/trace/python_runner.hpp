// Runs Python interpreters for the Python-frame tests: the python3 found at configure time
// (CUDEFRAG_PYTHON), or instead those named in the environment variable CUDEFRAG_TEST_PYTHONS
// (colon-separated paths): one build can be checked against several CPython versions, or carried
// to a machine whose python3 is elsewhere.
#pragma once

#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

#include "shim/trace/python_frames_layout.hpp"

namespace cudefrag::trace::testing {

struct PythonRun {
  int status = -1;  // exit status, 128 + signal, or 127 when it could not start
  std::string output;
};

// `interpreter -c script args...`, its standard output collected.
inline PythonRun run_python(const std::string& interpreter, const char* script,
                            const std::vector<std::string>& args) {
  PythonRun run;
  int pipe_fds[2];
  if (pipe(pipe_fds) != 0) return run;
  const pid_t child = fork();
  if (child == 0) {
    dup2(pipe_fds[1], STDOUT_FILENO);
    close(pipe_fds[0]);
    close(pipe_fds[1]);
    std::vector<const char*> argv = {interpreter.c_str(), "-c", script};
    for (const auto& a : args) argv.push_back(a.c_str());
    argv.push_back(nullptr);
    execv(interpreter.c_str(), const_cast<char* const*>(argv.data()));
    _exit(127);
  }
  close(pipe_fds[1]);
  char buffer[4096];
  for (ssize_t got; (got = read(pipe_fds[0], buffer, sizeof buffer)) > 0;) {
    run.output.append(buffer, static_cast<std::size_t>(got));
  }
  close(pipe_fds[0]);
  int status = 0;
  waitpid(child, &status, 0);
  run.status = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  return run;
}

// The interpreter's major.minor, or nullopt if it does not run.
inline std::optional<pyframes::Version> python_version(const std::string& interpreter) {
  const auto run = run_python(interpreter, "import sys; print('%d.%d' % sys.version_info[:2])", {});
  if (run.status != 0) return std::nullopt;
  return pyframes::version_from_text(run.output);
}

struct Interpreter {
  std::string path;
  pyframes::Version version;
  bool walkable() const { return pyframes::layout_for(version).has_value(); }
};

// The interpreters to test with, each checked to run (one that does not is a failure).
inline std::vector<Interpreter> test_interpreters() {
  std::vector<std::string> paths;
  if (const char* listed = std::getenv("CUDEFRAG_TEST_PYTHONS"); listed != nullptr) {
    std::istringstream list(listed);
    for (std::string path; std::getline(list, path, ':');) {
      if (!path.empty()) paths.push_back(path);
    }
  } else if (!std::string(CUDEFRAG_PYTHON).empty()) {
    paths.emplace_back(CUDEFRAG_PYTHON);
  }
  std::vector<Interpreter> found;
  for (const auto& path : paths) {
    const auto version = python_version(path);
    if (version) {
      found.push_back({path, *version});
    } else {
      ADD_FAILURE() << path << " does not run";
    }
  }
  return found;
}

// For tests that need one interpreter: the first, or "" (the test then skips).
inline std::string first_interpreter() {
  if (const char* listed = std::getenv("CUDEFRAG_TEST_PYTHONS"); listed != nullptr) {
    const std::string list = listed;
    return list.substr(0, list.find(':'));
  }
  return CUDEFRAG_PYTHON;
}

}  // namespace cudefrag::trace::testing
