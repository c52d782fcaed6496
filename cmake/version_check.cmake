# The SM_VERSION_* macros of include/sockmsg/sockmsg.h must say what
# project(VERSION) says, and so must the man page: configuring fails otherwise.
#
# Why a check and not a generated header: the header tree stays complete as
# checked in (what is installed is include/ as it is, and anything compiling
# against include/ without a configured build sees the macros), and a version
# bump that forgets one of the places fails at once, naming it.
set(sm_header ${PROJECT_SOURCE_DIR}/include/sockmsg/sockmsg.h)
# An edit of the header reruns the check at the next build.
set_property(DIRECTORY APPEND PROPERTY CMAKE_CONFIGURE_DEPENDS ${sm_header})
file(STRINGS ${sm_header} sm_version_lines
     REGEX "^#define[ \t]+SM_VERSION_(MAJOR|MINOR|PATCH|STRING)[ \t]")
set(sm_expect_MAJOR ${PROJECT_VERSION_MAJOR})
set(sm_expect_MINOR ${PROJECT_VERSION_MINOR})
set(sm_expect_PATCH ${PROJECT_VERSION_PATCH})
set(sm_expect_STRING "\"${PROJECT_VERSION}\"")
foreach(part MAJOR MINOR PATCH STRING)
  set(sm_found "")
  foreach(line IN LISTS sm_version_lines)
    if(line MATCHES "^#define[ \t]+SM_VERSION_${part}[ \t]+([^ \t]+)")
      set(sm_found "${CMAKE_MATCH_1}")
    endif()
  endforeach()
  if(NOT sm_found STREQUAL sm_expect_${part})
    message(FATAL_ERROR "${sm_header}: SM_VERSION_${part} is '${sm_found}', but "
      "project(sockmsg VERSION ${PROJECT_VERSION}) wants ${sm_expect_${part}}: "
      "change both together")
  endif()
endforeach()

# The man page's title line says the version too (installed as is).
set(sm_man ${PROJECT_SOURCE_DIR}/docs/sockmsg.1)
set_property(DIRECTORY APPEND PROPERTY CMAKE_CONFIGURE_DEPENDS ${sm_man})
file(STRINGS ${sm_man} sm_th REGEX "^\\.TH ")
string(REPLACE "." "\\." sm_version_re "${PROJECT_VERSION}")
if(NOT sm_th MATCHES "\"sockmsg ${sm_version_re}\"")
  message(FATAL_ERROR "${sm_man}: '${sm_th}' does not say \"sockmsg ${PROJECT_VERSION}\", "
    "as project(sockmsg VERSION ${PROJECT_VERSION}) does: change both together")
endif()
