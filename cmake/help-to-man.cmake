# Writes a man page (section 1) from `agentbus --help` and every command's --help, so the
# installed manual is the help the binary prints and cannot drift from it.
# Usage: cmake -DAGENTBUS=path/to/agentbus -DVERSION=x.y.z -DOUT=agentbus.1 -P help-to-man.cmake
function(help_of out_var)
  execute_process(COMMAND "${AGENTBUS}" ${ARGN} --help OUTPUT_VARIABLE text RESULT_VARIABLE rc)
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "${AGENTBUS} ${ARGN} --help failed (${rc})")
  endif()
  # roff: a backslash starts an escape, a leading '.' or '\'' a request.
  string(REPLACE "\\" "\\e" text "${text}")
  string(REGEX REPLACE "(^|\n)([.'])" "\\1\\\\&\\2" text "${text}")
  set(${out_var} "${text}" PARENT_SCOPE)
endfunction()

help_of(top)  # no command: `agentbus --help`
string(CONCAT page ".TH AGENTBUS 1 \"\" \"agentbus ${VERSION}\" \"User Commands\"\n"
                     ".SH NAME\nagentbus \\- agent processes coordinating through rooms on a shared-memory bus\n"
                     ".SH SYNOPSIS\n.B agentbus\n[\\fIGLOBAL OPTIONS\\fR] \\fICOMMAND\\fR [\\fIARGS\\fR]\n"
                     ".SH DESCRIPTION\n.nf\n${top}.fi\n.SH COMMANDS\n")
# Commands are the two-space-indented first words of the help's command lists.
string(REGEX MATCHALL "\n  [a-z][a-z-]*  " entries "${top}")
foreach(entry IN LISTS entries)
  string(STRIP "${entry}" command)
  help_of(text ${command})
  string(APPEND page ".SS ${command}\n.nf\n${text}.fi\n")
endforeach()
file(WRITE "${OUT}" "${page}")
