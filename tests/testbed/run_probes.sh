#!/bin/bash
# Copy of OpenNebula 2.2.1's src/im_mad/remotes/run_probes, rewritten for the onevz test bed
# (OpenNebula is not installed here). Logic as quoted in
# /work/shared/reference/opennebula-2.2.1-drivers.md §4:
#   export LANG=C
#   HYPERVISOR_DIR=$1.d ; ARGUMENTS=$* ; SCRIPTS_DIR=`dirname $0`; cd $SCRIPTS_DIR
#   function run_dir { ( cd $1
#       for i in `ls *`;do if [ -x "$i" ]; then ./$i $ARGUMENTS; EXIT_CODE=$?
#           if [ "x$EXIT_CODE" != "x0" ]; then echo "Error executing $i" 1>&2; exit $EXIT_CODE; fi; fi
#       done ) }
#   data=$( if [ -d "$HYPERVISOR_DIR" ]; then run_dir "$HYPERVISOR_DIR"; fi )
#   EXIT_CODE=$?
#   echo $data | tr '\n' ' '
#   if [ "x$EXIT_CODE" != "x0" ]; then exit $EXIT_CODE; fi

export LANG=C

HYPERVISOR_DIR=$1.d
ARGUMENTS=$*

SCRIPTS_DIR=`dirname $0`
cd $SCRIPTS_DIR

function run_dir {
    (
    cd $1
    for i in `ls *`;do
        if [ -x "$i" ]; then
            ./$i $ARGUMENTS
            EXIT_CODE=$?
            if [ "x$EXIT_CODE" != "x0" ]; then
                echo "Error executing $i" 1>&2
                exit $EXIT_CODE
            fi
        fi
    done
    )
}

data=$(
    if [ -d "$HYPERVISOR_DIR" ]; then
        run_dir "$HYPERVISOR_DIR"
    fi
)
EXIT_CODE=$?

echo $data | tr '\n' ' '

if [ "x$EXIT_CODE" != "x0" ]; then
    exit $EXIT_CODE
fi
