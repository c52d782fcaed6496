# What `cmake --install` puts under the prefix (GNUInstallDirs names):
#   lib/libsockmsg.a, lib/libsockmsg.so.X.Y.Z (+ the SONAME and dev links)
#   include/sockmsg/*.h (version.h generated: cmake/version.cmake)
#   lib/pkgconfig/sockmsg.pc
#   lib/cmake/sockmsg/  sockmsgConfig.cmake, sockmsgConfigVersion.cmake and
#                       the exported targets sockmsg::sockmsg, sockmsg::static
# (the sockmsg tool and its man page are tools/CMakeLists.txt's).
#
# Everything is relocatable: no file holds the install prefix, so a tree
# installed with --prefix A works after being moved to B. The CMake files find
# the prefix from their own location; sockmsg.pc from ${pcfiledir}.
include(CMakePackageConfigHelpers)

set(SM_CMAKEDIR ${CMAKE_INSTALL_LIBDIR}/cmake/sockmsg)
set(SM_PCDIR ${CMAKE_INSTALL_LIBDIR}/pkgconfig)

install(TARGETS sockmsg sockmsg_static EXPORT sockmsgTargets
  ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR}
  LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR}
)
install(DIRECTORY ${PROJECT_SOURCE_DIR}/include/sockmsg DESTINATION ${CMAKE_INSTALL_INCLUDEDIR}
  FILES_MATCHING PATTERN "*.h")
install(FILES ${SM_GENERATED_INCLUDE}/sockmsg/version.h
  DESTINATION ${CMAKE_INSTALL_INCLUDEDIR}/sockmsg)

install(EXPORT sockmsgTargets NAMESPACE sockmsg:: FILE sockmsgTargets.cmake
  DESTINATION ${SM_CMAKEDIR})
configure_package_config_file(${CMAKE_CURRENT_LIST_DIR}/sockmsgConfig.cmake.in
  ${PROJECT_BINARY_DIR}/sockmsgConfig.cmake INSTALL_DESTINATION ${SM_CMAKEDIR})
# The SONAME changes with the major version only; the package says the same.
write_basic_package_version_file(${PROJECT_BINARY_DIR}/sockmsgConfigVersion.cmake
  COMPATIBILITY SameMajorVersion)
install(FILES ${PROJECT_BINARY_DIR}/sockmsgConfig.cmake
  ${PROJECT_BINARY_DIR}/sockmsgConfigVersion.cmake DESTINATION ${SM_CMAKEDIR})

# sockmsg.pc: the prefix is the .pc file's directory less SM_PCDIR's depth
# (lib/pkgconfig: ../..). An absolute CMAKE_INSTALL_LIBDIR or INCLUDEDIR
# cannot be relocated: it is written as is.
set(SM_PC_PREFIX "\${pcfiledir}")
if(IS_ABSOLUTE "${SM_PCDIR}")
  set(SM_PC_PREFIX "${CMAKE_INSTALL_PREFIX}")
else()
  string(REGEX REPLACE "[^/]+" ".." sm_up "${SM_PCDIR}")
  string(APPEND SM_PC_PREFIX "/${sm_up}")
endif()
foreach(dir LIBDIR INCLUDEDIR)
  if(IS_ABSOLUTE "${CMAKE_INSTALL_${dir}}")
    set(SM_PC_${dir} "${CMAKE_INSTALL_${dir}}")
  else()
    set(SM_PC_${dir} "\${prefix}/${CMAKE_INSTALL_${dir}}")
  endif()
endforeach()
if(SM_HAVE_URING)
  set(SM_PC_URING "-luring")
else()
  set(SM_PC_URING "")
endif()
configure_file(${CMAKE_CURRENT_LIST_DIR}/sockmsg.pc.in ${PROJECT_BINARY_DIR}/sockmsg.pc @ONLY)
install(FILES ${PROJECT_BINARY_DIR}/sockmsg.pc DESTINATION ${SM_PCDIR})
